# syntax=docker/dockerfile:1
# GuardServe gateway: the OpenAI API, guardrails, keys and limits; no torch (models run on vLLM or the engine image).
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t guardserve-gateway .
ARG PYTHON_REPO=python
ARG PYTHON_VERSION=3.11

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm AS build
ARG LOCK=requirements/gateway.lock
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/guardserve
COPY ${LOCK} /tmp/requirements.lock
# exact versions from the lock file: nothing is resolved here
RUN /opt/guardserve/bin/pip install -r /tmp/requirements.lock
COPY pyproject.toml README.md setup.py ./
COPY guardserve ./guardserve
COPY app ./app
COPY guardrails ./guardrails
COPY models ./models
COPY training ./training
# a regular (non-editable) install: the wheel carries the policy file, the registry and the guard classifiers
RUN /opt/guardserve/bin/pip install --no-deps . \
    && /opt/guardserve/bin/python -c "import guardserve.app.main, guardserve.guardrails.policy"

FROM ${PYTHON_REPO}:${PYTHON_VERSION}-slim-bookworm
ENV PATH=/opt/guardserve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
    GUARDSERVE_HOST=0.0.0.0 \
    GUARDSERVE_PORT=8000
RUN groupadd --system --gid 10001 guardserve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin guardserve
COPY --from=build /opt/guardserve /opt/guardserve
# an empty working directory: nothing relative resolves into the image by accident
WORKDIR /srv/guardserve
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["guardserve"]
CMD ["serve"]
