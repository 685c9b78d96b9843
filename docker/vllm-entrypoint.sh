#!/bin/sh
# Starts vLLM's OpenAI server on the baked-in export ($MODELS_DIR/base) with every adapter under $MODELS_DIR/adapters.
# Extra arguments go to vLLM as they are (e.g. --tensor-parallel-size 2 --dtype bfloat16).
set -eu
models=${MODELS_DIR:-/models}
set -- --model "$models/base" --served-model-name "${SERVED_MODEL_NAME}" --host 0.0.0.0 --port "${PORT}" \
  --max-model-len "${MAX_MODEL_LEN}" "$@"
lora=""
for dir in "$models"/adapters/*/; do
  [ -f "${dir}adapter_config.json" ] || continue
  name=$(basename "$dir")
  lora="${lora} ${name}=${dir%/}"
done
if [ -n "$lora" ]; then
  # shellcheck disable=SC2086  # one word per adapter
  set -- "$@" --enable-lora --lora-modules $lora
fi
exec python3 -m vllm.entrypoints.openai.api_server "$@"
