from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
# The suite's gateways run without API keys or rate limits unless a test turns them on explicitly
# (tests/app/auth and tests/app/limits pass AuthSettings/LimitSettings, which override these).
os.environ.setdefault("GUARDSERVE_AUTH__ENABLED", "false")
os.environ.setdefault("GUARDSERVE_LIMITS__ENABLED", "false")
# Gateways without Redis keep feedback in a dev-mode file: this session's own, never the checkout's .guardserve/.
os.environ.setdefault("GUARDSERVE_FEEDBACK__FILE", os.path.join(tempfile.mkdtemp(prefix="gs-feedback-"), "f.jsonl"))

from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.registry import ModelEntry
from tests.support.redis import RedisProcess
from tests.support.requirements import require
from tests.support.servers import EngineProcess, LiveServer, serve_in_thread, start_engine_process

# Every property test: no per-example deadline (the default 200 ms flakes on a loaded machine), and in CI a fixed
# sequence of examples (derandomize), so a run there is reproducible.
hypothesis.settings.register_profile("guardserve", deadline=None, derandomize=bool(os.environ.get("CI")))
hypothesis.settings.load_profile("guardserve")

TINY = "tiny"
SHARED_REDIS_HOW = "start it: redis-server --daemonize yes --port 6379 --save ''"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint (trained BPE tokenizer, chat template, random Llama weights), built once per session."""
    from guardserve.models.untrained import build_untrained_checkpoint

    return build_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", size="test", seed=0)


NO_GUARDS = GuardrailSettings(enabled=False)


def cpu_settings(checkpoint: Path, **overrides: object) -> Settings:
    """The tiny checkpoint on the CPU engine. Guardrails are off unless a test passes ``guardrails=``: the serving
    tests compare exact generations, and the tiny model's random output is not what the guard tests are about."""
    cpu = overrides.pop("cpu", CPUEngineConfig())
    guardrails = overrides.pop("guardrails", NO_GUARDS)
    return Settings(
        models=[ModelEntry(name=TINY, engine="cpu", checkpoint=checkpoint)],
        cpu=cpu,  # type: ignore[arg-type]
        guardrails=guardrails,  # type: ignore[arg-type]
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def gateway(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    """The gateway serving the tiny checkpoint with the embedded CPU engine."""
    server = serve_in_thread(create_app(cpu_settings(tiny_checkpoint)))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def upstream(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """`guardserve engine` in its own process: a real OpenAI-compatible upstream."""
    log = tmp_path_factory.mktemp("upstream") / "engine.log"
    engine = start_engine_process(tiny_checkpoint, name="tiny-upstream", log=log)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def http_gateway(upstream: EngineProcess) -> Iterator[LiveServer]:
    """The gateway serving the upstream through the OpenAI-HTTP engine."""
    entry = ModelEntry(name=TINY, engine="openai", url=upstream.v1, upstream_model=upstream.name, context_length=2048)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS)))
    yield server
    server.stop()


@pytest.fixture
def shared_redis() -> Iterator[tuple[str, str]]:
    """(url, prefix) on the shared Redis; every key under the prefix is deleted afterwards."""
    from tests.support.redis import SHARED_URL, delete_prefix, new_prefix, shared_redis_available

    require(shared_redis_available(), "Redis on 127.0.0.1:6379", SHARED_REDIS_HOW)
    prefix = new_prefix()
    yield SHARED_URL, prefix
    delete_prefix(SHARED_URL, prefix)


@pytest.fixture(scope="session")
def needs_shared_redis() -> None:
    """For modules whose module-scoped fixtures use the shared Redis: ``pytest.mark.usefixtures`` this (a session
    fixture runs before them), and the module skips outside CI, fails in CI, when Redis is absent."""
    from tests.support.redis import shared_redis_available

    require(shared_redis_available(), "Redis on 127.0.0.1:6379", SHARED_REDIS_HOW)


@pytest.fixture(scope="session")
def needs_redis_server() -> None:
    """For tests that start their own ``redis-server``."""
    require(shutil.which("redis-server") is not None, "redis-server", "apt-get install -y redis-server")


@pytest.fixture
def own_redis(tmp_path: Path, needs_redis_server: None) -> Iterator[RedisProcess]:
    """A redis-server of this test's own (AOF on), killed at the end."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.kill()
