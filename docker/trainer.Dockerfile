# syntax=docker/dockerfile:1
# GuardServe trainer (`guardserve train ...`, `guardserve guards eval`): CPU torch, the trainer and evaluation
# extras. Runs are written under /work (mount a volume there); exports are what the engine and vLLM images serve.
# Build from the repository root:  docker build -f docker/trainer.Dockerfile -t guardserve-trainer .
# Run:  docker run --rm -v "$PWD/runs:/work/runs" guardserve-trainer run training/recipes/default.yaml --out runs/default
ARG PYTHON_REPO=python
ARG PYTHON_VERSION=3.11

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm AS build
ARG LOCK=requirements/dev.lock
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/guardserve
COPY ${LOCK} /tmp/requirements.lock
RUN /opt/guardserve/bin/pip install --extra-index-url "${TORCH_INDEX}" -r /tmp/requirements.lock
COPY pyproject.toml README.md setup.py ./
COPY guardserve ./guardserve
COPY app ./app
COPY guardrails ./guardrails
COPY models ./models
COPY training ./training
RUN /opt/guardserve/bin/pip install --no-deps . \
    && /opt/guardserve/bin/python -c "import torch, guardserve.training.cli"

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm
ENV PATH=/opt/guardserve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/work \
    MPLCONFIGDIR=/tmp/matplotlib
RUN groupadd --system --gid 10001 guardserve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /work --shell /usr/sbin/nologin guardserve \
    && mkdir -p /work && chown 10001:10001 /work
COPY --from=build /opt/guardserve /opt/guardserve
COPY --chown=10001:10001 training/recipes /work/training/recipes
COPY --chown=10001:10001 evaluation /work/evaluation
WORKDIR /work
USER 10001:10001
# a batch job, not a service: nothing to probe
HEALTHCHECK NONE
ENTRYPOINT ["guardserve", "train"]
CMD ["--help"]
