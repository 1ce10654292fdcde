# Two commands do all set-up on a fresh machine:
#   make demo   install, ingest the bundled samples, start the service on http://127.0.0.1:8000
#   make test   install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo serve test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(VENV)/bin/mmrag models fetch || echo 'table structure model not fetched: tables keep the rule-based grid'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/mmrag ingest samples --collection samples --data-dir $(DATA) --progress || echo 'some samples failed (listed above); starting anyway'
	$(VENV)/bin/mmrag serve --data-dir $(DATA) --host $(HOST) --port $(PORT)

serve: install
	$(VENV)/bin/mmrag serve --data-dir $(DATA) --host $(HOST) --port $(PORT)

test: install
	@if [ -d /usr/share/wordnet ] && [ ! -d nltk_data/corpora/wordnet ]; then $(PY) -m eval.wordnet; fi
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m bench.ingest --out docs/benchmarks.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
