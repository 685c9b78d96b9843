# GuardServe. Two set-up commands: `make serve` and `make test`. Both create .venv and install what they need
# (only again when pyproject.toml changes), so they are fast the second time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
GUARDSERVE := $(VENV)/bin/guardserve
UNTRAINED := models/checkpoints/guardserve-untrained
BUNDLED := models/checkpoints/guardserve-tiny

.PHONY: serve test lint bench bench-limits bench-metrics clean untrained train-default

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-serve: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[engine]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[train,dev]'
	touch $@ $(VENV)/.installed-serve $(VENV)/.installed-train

$(VENV)/.installed-train: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[train]'
	touch $@

## serve: the registered models (models/registry.yaml: the bundled guardserve-tiny) on http://127.0.0.1:8000
serve: $(VENV)/.installed-serve
	$(GUARDSERVE) serve

## untrained: a random-weight checkpoint of the default shape (for experiments and benchmarks)
untrained: $(VENV)/.installed-serve
	$(GUARDSERVE) checkpoint untrained $(UNTRAINED) --size default

## train-default: retrain the bundled model from its two recipes (about 55 CPU minutes here), evaluate, export it (gated)
train-default: $(VENV)/.installed-train
	$(GUARDSERVE) train run training/recipes/default.yaml --out runs/default
	$(GUARDSERVE) train run training/recipes/default-phase2.yaml --out runs/default-phase2
	$(GUARDSERVE) train export runs/default-phase2 --out $(BUNDLED) --dtype bfloat16

## test: the whole suite (includes ruff and mypy)
test: $(VENV)/.installed-test
	$(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-test
	$(PY) loadtests/bench_cpu_engine.py

## bench-limits: admission latency and gateway req/s with keys and limits on vs off (needs Redis on :6379)
bench-limits: $(VENV)/.installed-test
	$(PY) loadtests/bench_limits.py

bench-metrics: $(VENV)/.installed-test
	$(PY) loadtests/bench_metrics_overhead.py

clean:
	rm -rf $(VENV) $(UNTRAINED) .pytest_cache .mypy_cache .ruff_cache *.egg-info
