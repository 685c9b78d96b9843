"""docker/: the four Dockerfiles (hadolint, checkov, what each must hold) and the compose stack (docker-compose
config for both profiles, and what the normalised file holds).

Tools from `make deploy-tools` (.tools/bin); missing, these tests skip outside CI and fail in CI. No image is built
here: no base image can be pulled on the project's machines; test_image.py builds and runs the gateway image when
asked to (docs/deploy.md, "Building images here").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardserve.app.access import production_problems
from guardserve.app.settings import Settings
from guardserve.models.registry import load_registry
from tests.support.deploy_tools import ROOT, run, tool
from tests.support.requirements import require

DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
COMPOSE = DOCKER / "compose.yaml"
OBSERVABILITY = ROOT / "k8s" / "observability"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and not line.startswith("#")
    ]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_there_are_the_four_images() -> None:
    assert [f.name for f in DOCKERFILES] == [
        "engine.Dockerfile",
        "gateway.Dockerfile",
        "trainer.Dockerfile",
        "vllm.Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    done = run(tool("hadolint"), "--failure-threshold", "info", str(dockerfile))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user(dockerfile: Path) -> None:
    users = [args for op, args in final_stage(dockerfile) if op == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000  # numeric: Kubernetes' runAsNonRoot can verify it
    assert any(op in ("HEALTHCHECK", "ENTRYPOINT") for op, _ in final_stage(dockerfile))


@pytest.mark.parametrize(
    ("name", "lock"),
    [
        ("gateway", "requirements/gateway.lock"),
        ("engine", "requirements/serve.lock"),
        ("trainer", "requirements/dev.lock"),
    ],
)
def test_python_images_install_from_their_lock_in_a_build_stage(name: str, lock: str) -> None:
    dockerfile = DOCKER / f"{name}.Dockerfile"
    steps = instructions(dockerfile)
    assert f"LOCK={lock}" in [args for op, args in steps if op == "ARG"]
    assert next(args for op, args in steps if op == "FROM").endswith(" AS build")  # multi-stage
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "-r /tmp/requirements.lock" in runs and "--no-deps ." in runs  # exact pins, then the project, no editable
    final = final_stage(dockerfile)
    assert ("COPY", "--from=build /opt/guardserve /opt/guardserve") in final
    assert not [args for op, args in final if op == "RUN" and "pip" in args]  # no build tools in the final image


def test_the_gateway_image_has_no_torch() -> None:
    lock = (ROOT / "requirements" / "gateway.lock").read_text(encoding="utf-8")
    pins = {line.split("==")[0] for line in lock.splitlines() if "==" in line and not line.startswith("#")}
    assert not pins & {"torch", "transformers", "vllm", "accelerate"}
    text = (DOCKER / "gateway.Dockerfile").read_text(encoding="utf-8")
    assert "torch" not in text.replace("no torch", "")


def test_the_vllm_image_is_the_official_one_serving_our_export() -> None:
    steps = instructions(DOCKER / "vllm.Dockerfile")
    assert [args for op, args in steps if op == "FROM"] == ["vllm/vllm-openai:${VLLM_VERSION}"]
    assert "VLLM_VERSION=v0.33.0" in [args for op, args in steps if op == "ARG"]
    copies = [args for op, args in steps if op == "COPY"]
    assert "${MODEL} /models/base" in copies and "${ADAPTERS} /models/adapters" in copies
    assert (ROOT / "models" / "checkpoints" / "guardserve-tiny" / "config.json").exists()  # the default MODEL


def fake_python(tmp_path: Path) -> Path:
    """A `python3` that prints its arguments as JSON, in place of vLLM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text('#!/bin/sh\nexec "$REAL_PYTHON" -c \'import json, sys; print(json.dumps(sys.argv[1:]))\' "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.mark.parametrize("adapters", [[], ["support-v2", "billing-v1"]])
def test_the_vllm_entrypoint_serves_the_base_and_every_adapter(tmp_path: Path, adapters: list[str]) -> None:
    models = tmp_path / "models"
    (models / "base").mkdir(parents=True)
    (models / "adapters" / "not-an-adapter").mkdir(parents=True)  # no adapter_config.json: ignored
    for name in adapters:
        (models / "adapters" / name).mkdir()
        (models / "adapters" / name / "adapter_config.json").write_text("{}")
    env = {
        "PATH": f"{fake_python(tmp_path)}:/usr/bin:/bin",
        "REAL_PYTHON": sys.executable,
        "MODELS_DIR": str(models),
        "SERVED_MODEL_NAME": "guardserve-tiny",
        "PORT": "8001",
        "MAX_MODEL_LEN": "512",
    }
    done = subprocess.run(
        ["sh", str(DOCKER / "vllm-entrypoint.sh"), "--dtype", "float32"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    argv = json.loads(done.stdout)
    assert argv[:2] == ["-m", "vllm.entrypoints.openai.api_server"]
    args = argv[2:]
    assert args[args.index("--model") + 1] == f"{models}/base"
    assert args[args.index("--served-model-name") + 1] == "guardserve-tiny"
    assert args[args.index("--port") + 1] == "8001" and "--dtype" in args
    if adapters:
        at = args.index("--lora-modules")
        assert sorted(args[at + 1 :]) == sorted(f"{n}={models}/adapters/{n}" for n in adapters)
        assert "--enable-lora" in args
    else:
        assert "--enable-lora" not in args


@pytest.mark.slow
def test_checkov_finds_nothing_in_docker() -> None:
    checkov = tool("checkov")
    done = run(checkov, "--config-file", str(ROOT / ".checkov.yaml"), "-d", str(DOCKER),
               "--framework", "dockerfile", "secrets", "-o", "json", "--quiet")  # fmt: skip
    reports = json.loads(done.stdout) if done.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['file_path']}" for r in reports for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 100  # every Dockerfile was scanned
    assert done.returncode == 0


def compose_config(profile: str) -> dict[str, Any]:
    env = {**os.environ, "COMPOSE_PROFILES": profile}
    done = subprocess.run(
        [tool("docker-compose"), "-f", str(COMPOSE), "config", "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


@pytest.fixture(scope="module")
def cpu() -> dict[str, Any]:
    return compose_config("cpu")


@pytest.fixture(scope="module")
def gpu() -> dict[str, Any]:
    return compose_config("gpu")


def test_compose_config_validates_quietly() -> None:
    done = run(tool("docker-compose"), "-f", str(COMPOSE), "config", "--quiet")
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_cpu_profile_is_the_default(cpu: dict[str, Any]) -> None:
    env_file = (DOCKER / ".env").read_text(encoding="utf-8")
    assert "COMPOSE_PROFILES=cpu" in env_file.splitlines()
    assert set(cpu["services"]) == {"redis", "gateway", "engine", "prometheus", "grafana"}


def test_the_gpu_profile_runs_vllm_on_reserved_gpus(gpu: dict[str, Any]) -> None:
    assert set(gpu["services"]) == {"redis", "gateway", "vllm", "prometheus", "grafana"}
    vllm = gpu["services"]["vllm"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert vllm["build"]["dockerfile"] == "docker/vllm.Dockerfile"


def test_both_engines_answer_where_the_registry_points(
    cpu: dict[str, Any], gpu: dict[str, Any], tmp_path: Path
) -> None:
    (entry,) = load_registry(DOCKER / "registry.yaml")
    assert entry.url == "http://upstream:8001/v1"
    assert "upstream" in cpu["services"]["engine"]["networks"]["default"]["aliases"]
    assert "upstream" in gpu["services"]["vllm"]["networks"]["default"]["aliases"]
    engine_cmd = (DOCKER / "engine.Dockerfile").read_text(encoding="utf-8")
    assert '"--port", "8001"' in engine_cmd and "PORT=8001" in (DOCKER / "vllm.Dockerfile").read_text(encoding="utf-8")


def test_redis_keeps_an_append_only_file_on_a_volume(cpu: dict[str, Any]) -> None:
    redis = cpu["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    (volume,) = redis["volumes"]
    assert volume["type"] == "volume" and volume["target"] == "/data" and volume["source"] == "redis-data"


def test_the_gateway_runs_in_prod_mode_with_file_secrets(cpu: dict[str, Any]) -> None:
    gateway = cpu["services"]["gateway"]
    env = gateway["environment"]
    assert env["GUARDSERVE_MODE"] == "prod"
    assert env["GUARDSERVE_REDIS__URL"] == "redis://redis:6379/0"
    assert env["GUARDSERVE_AUTH__ADMIN_KEY_FILE"] == "/run/secrets/admin_key"
    assert {s["source"] for s in gateway["secrets"]} == {"admin_key", "pepper"}
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert all(p["host_ip"] == "127.0.0.1" for s in cpu["services"].values() for p in s.get("ports", []))


def test_every_service_is_hardened(cpu: dict[str, Any], gpu: dict[str, Any]) -> None:
    for config in (cpu, gpu):
        for name, service in config["services"].items():
            assert service["read_only"] is True, name
            assert service["cap_drop"] == ["ALL"], name
            assert "no-new-privileges:true" in service["security_opt"], name
            assert "privileged" not in service and service.get("user") != "root", name


def test_prometheus_and_grafana_reuse_the_observability_files(cpu: dict[str, Any]) -> None:
    configs = cpu["configs"]
    assert Path(configs["rules"]["file"]) == OBSERVABILITY / "prometheus-rules.yaml"
    assert Path(configs["dashboard"]["file"]) == OBSERVABILITY / "grafana-dashboard.json"
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["guardserve"]["static_configs"][0]["targets"] == ["gateway:8000"]
    assert jobs["vllm"]["metric_relabel_configs"][0] == {
        "source_labels": ["__name__"],
        "regex": "vllm:.*",
        "action": "keep",
    }
    targets = {c["target"] for c in cpu["services"]["prometheus"]["configs"]}
    assert "/etc/prometheus/rules/guardserve.yaml" in targets
    grafana = {c["source"]: c["target"] for c in cpu["services"]["grafana"]["configs"]}
    provider = yaml.safe_load(configs["grafana_dashboards"]["content"])
    assert str(Path(grafana["dashboard"]).parent) == provider["providers"][0]["options"]["path"]
    datasource = yaml.safe_load(configs["grafana_datasource"]["content"])["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool", "apt-get install -y --no-install-recommends prometheus")
    assert promtool is not None
    done = run(promtool, "check", "config", str(DOCKER / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gateway_environment_passes_prod_checks(
    cpu: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway service's environment, with secret files as docs/deploy.md makes them, is a valid prod config."""
    secrets = {"admin_key": "gs-" + "ab12" * 3 + "-" + "s" * 43, "pepper": "p" * 64}
    for key in [k for k in os.environ if k.startswith("GUARDSERVE_")]:
        monkeypatch.delenv(key)  # the suite's own test settings
    for key, value in cpu["services"]["gateway"]["environment"].items():
        if value.startswith("/run/secrets/"):
            file = tmp_path / Path(value).name
            file.write_text(secrets[file.name] + "\n", encoding="utf-8")
            value = str(file)
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GUARDSERVE_REGISTRY")  # a path inside the container
    settings = Settings()
    assert settings.mode == "prod" and production_problems(settings) == []
    assert settings.auth.admin_key_value() == secrets["admin_key"]
