# syntax=docker/dockerfile:1
# vLLM's official OpenAI server image serving a GuardServe export: the bundled checkpoint by default, or any export
# of `guardserve train export` (a merged model), optionally with LoRA adapters beside it.
# Build from the repository root:
#   docker build -f docker/vllm.Dockerfile -t guardserve-vllm .
#   docker build -f docker/vllm.Dockerfile --build-arg MODEL=runs/my-export --build-arg MODEL_NAME=my-model \
#       --build-arg ADAPTERS=runs/adapters -t guardserve-vllm:my-model .
# Adapters: each sub-directory of ADAPTERS (a PEFT adapter: adapter_config.json + adapter_model.safetensors) is
# served as the model `<dir name>` on top of the base; the gateway's registry names it as `upstream_model`.
# vLLM 0.33 reads the transformers-5.20 checkpoints our trainer writes (see training/export.py).
ARG VLLM_VERSION=v0.33.0
FROM vllm/vllm-openai:${VLLM_VERSION}
ARG MODEL=models/checkpoints/guardserve-tiny
ARG MODEL_NAME=guardserve-tiny
ARG ADAPTERS=docker/adapters
ENV HOME=/tmp \
    VLLM_CACHE_ROOT=/tmp/vllm \
    HF_HUB_OFFLINE=1 \
    SERVED_MODEL_NAME=${MODEL_NAME} \
    MAX_MODEL_LEN=512 \
    PORT=8001
COPY ${MODEL} /models/base
COPY ${ADAPTERS} /models/adapters
COPY docker/vllm-entrypoint.sh /usr/local/bin/guardserve-vllm
RUN groupadd --system --gid 10001 vllm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin vllm \
    && chmod 0755 /usr/local/bin/guardserve-vllm
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=4)"]
ENTRYPOINT ["/usr/local/bin/guardserve-vllm"]
