# syntax=docker/dockerfile:1
# GuardServe CPU engine: one checkpoint behind the OpenAI API (`guardserve engine`), an upstream for the gateway on
# machines without a GPU. torch is its CPU build (the lock pins 2.13.0+cpu; PyTorch's CPU index provides it).
# Build from the repository root:  docker build -f docker/engine.Dockerfile -t guardserve-engine .
ARG PYTHON_REPO=python
ARG PYTHON_VERSION=3.11

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm AS build
ARG LOCK=requirements/serve.lock
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
    && /opt/guardserve/bin/python -c "import torch, guardserve.models.cpu.engine"

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm
# the checkpoint served by default (baked in); mount another at /models/NAME and pass --checkpoint
ARG CHECKPOINT=models/checkpoints/guardserve-tiny
ENV PATH=/opt/guardserve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 guardserve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin guardserve
COPY --from=build /opt/guardserve /opt/guardserve
COPY ${CHECKPOINT} /models/guardserve-tiny
WORKDIR /srv/guardserve
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/ready', timeout=2)"]
ENTRYPOINT ["guardserve", "engine"]
CMD ["--checkpoint", "/models/guardserve-tiny", "--name", "guardserve-tiny", "--host", "0.0.0.0", "--port", "8001"]
