"""Build the gateway image with podman and run it as the chart does: prod mode, user 10001, read-only root, no
capabilities, secrets as files, a Redis with AOF. Opt-in (GUARDSERVE_IMAGE_TESTS=1): a build takes minutes and
needs a python:3.11-slim-bookworm base image, which no registry reachable from the project's machines provides.

Knobs for machines like this one (docs/deploy.md, "Building images here"):
  GUARDSERVE_IMAGE_BASE     the base image's repository (the Dockerfile's PYTHON_REPO; default: python)
  GUARDSERVE_PODMAN_FLAGS   podman's global flags, e.g. "--runtime runc"
  GUARDSERVE_PODMAN_ULIMITS build/run flags, e.g. "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096"
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.deploy_tools import ROOT
from tests.support.processes import free_port
from tests.support.redis import RedisProcess
from tests.support.waits import STARTUP_S, SUBPROCESS_S, wait_until

pytestmark = pytest.mark.slow
IMAGE = "localhost/guardserve-gateway:test"
ADMIN_KEY = "gs-0123456789ab-" + "k" * 43
PEPPER = "p" * 48


def podman(*args: str, timeout: float = SUBPROCESS_S, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["podman", *shlex.split(os.environ.get("GUARDSERVE_PODMAN_FLAGS", "")), *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{shlex.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def image() -> str:
    if os.environ.get("GUARDSERVE_IMAGE_TESTS") != "1":
        pytest.skip("image build is opt-in: GUARDSERVE_IMAGE_TESTS=1 (needs podman and a python:3.11-slim base image)")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    ulimits = shlex.split(os.environ.get("GUARDSERVE_PODMAN_ULIMITS", ""))
    base = os.environ.get("GUARDSERVE_IMAGE_BASE", "python")
    podman("build", "--format", "docker", *ulimits, "--network", "host", "--build-arg", f"PYTHON_REPO={base}",
           "-f", "docker/gateway.Dockerfile", "-t", IMAGE, ".", timeout=1800)  # fmt: skip
    return IMAGE


def get(url: str, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def gateway(image: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    redis = RedisProcess(tmp_path / "redis", fsync="everysec")
    redis.directory.mkdir()
    redis.start()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "admin-key").write_text(ADMIN_KEY)
    (secrets / "pepper").write_text(PEPPER)
    for file in secrets.iterdir():
        file.chmod(0o444)
    port, metrics = free_port(), free_port()
    upstream = free_port()  # nothing listens: the model is registered, its engine down
    models = [{"name": "m", "engine": "openai", "url": f"http://127.0.0.1:{upstream}/v1", "context_length": 512}]
    env = {
        "GUARDSERVE_MODE": "prod",
        "GUARDSERVE_PORT": str(port),
        "GUARDSERVE_HOST": "127.0.0.1",
        "GUARDSERVE_WORKERS": "2",  # as the chart: two processes, metrics merged in /tmp, on a port of their own
        "GUARDSERVE_OBSERVABILITY__METRICS_PORT": str(metrics),
        "GUARDSERVE_MODELS": json.dumps(models),
        "GUARDSERVE_REDIS__URL": redis.url,
        "GUARDSERVE_AUTH__ADMIN_KEY_FILE": "/run/secrets/guardserve/admin-key",
        "GUARDSERVE_AUTH__PEPPER_FILE": "/run/secrets/guardserve/pepper",
    }
    name = f"gs-image-test-{port}"
    ulimits = shlex.split(os.environ.get("GUARDSERVE_PODMAN_ULIMITS", ""))
    podman("run", "-d", "--name", name, *ulimits, "--network", "host", "--read-only", "--tmpfs", "/tmp",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-v", f"{secrets}:/run/secrets/guardserve:ro",
           *[a for k, v in env.items() for a in ("-e", f"{k}={v}")], image)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return get(f"{base}/health")[0] == 200
            except OSError:
                state = podman("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
                assert state == "true", podman("logs", name, check=False).stderr[-4000:]
                return False

        wait_until(up, timeout=STARTUP_S, interval=0.5, what="the gateway container answers /health")
        yield base, f"http://127.0.0.1:{metrics}"
    finally:
        podman("rm", "-f", name, check=False)
        redis.kill()


def test_the_image_runs_as_10001_without_torch(image: str) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["guardserve"] and config["Cmd"] == ["serve"]
    probe = "import importlib.util as u, os; print(os.getuid(), u.find_spec('torch'))"
    ulimits = shlex.split(os.environ.get("GUARDSERVE_PODMAN_ULIMITS", ""))
    done = podman("run", "--rm", *ulimits, "--entrypoint", "python", image, "-c", probe)
    assert done.stdout.split() == ["10001", "None"]


def test_the_gateway_serves_from_the_image_in_prod_mode(gateway: tuple[str, str]) -> None:
    api, metrics = gateway
    assert get(f"{api}/v1/models")[0] == 401
    status, body = get(f"{api}/v1/models", ADMIN_KEY)
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["m"]
    status, body = get(f"{api}/ready")
    assert status == 503 and json.loads(body)["models"]["m"]["ok"] is False  # its engine is down, and it says so
    status, body = get(f"{metrics}/metrics")
    assert status == 200 and b"guardserve_requests_total" in body
    assert get(f"{api}/metrics")[0] == 404  # not on the API port
