"""Prometheus metrics."""

from __future__ import annotations

from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry()
REQUESTS = Counter("mmrag_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("mmrag_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
STAGE = Histogram("mmrag_query_stage_seconds", "Query stage latency", ["stage"], registry=REGISTRY,
                  buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
INGESTED = Counter("mmrag_documents_ingested_total", "Documents ingested", ["status"], registry=REGISTRY)


def observe(scope: dict, status: int, seconds: float) -> None:
    route = scope.get("route")
    path = getattr(route, "path", "unmatched")  # the template, not the raw path: bounded label values
    REQUESTS.labels(scope["method"], path, str(status)).inc()
    LATENCY.labels(scope["method"], path).observe(seconds)


def observe_stages(timings: dict[str, float]) -> None:
    for name, ms in timings.items():
        STAGE.labels(name.removesuffix("_ms")).observe(ms / 1000)


def render() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
