"""The Helm chart k8s/guardserve: lint, render for every values file in ci/, validate against the Kubernetes schemas,
scan with checkov, and assert what the rendered manifests must hold (GPUs, isolation, non-root, probes, the
gateway's registry pointing at the model Services, settings the gateway accepts in prod).

Tools from `make deploy-tools` (.tools/bin); missing, these tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardserve.app.access import production_problems
from guardserve.app.auth.keys import key_id_of
from guardserve.app.settings import Settings
from guardserve.guardrails.policy import load_policies
from guardserve.models.registry import load_registry
from tests.support.deploy_tools import ROOT, run, tool

CHART = ROOT / "k8s" / "guardserve"
OBSERVABILITY = ROOT / "k8s" / "observability"
NAMESPACE = "guardserve"
RELEASE = "gs"
VALUES = {
    "default": None,
    "gpu": CHART / "ci" / "gpu-values.yaml",
    "multi-model": CHART / "ci" / "multi-model-values.yaml",
    "external-redis": CHART / "ci" / "external-redis-values.yaml",
}
KUBERNETES = "1.30.0"
WORKLOADS = ("Deployment", "StatefulSet", "Pod")
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def helm() -> str:
    return tool("helm")


def template(helm: str, values: Path | None = None, *sets: str, check: bool = True) -> str:
    args = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    done = run(*args)
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout if done.returncode == 0 else done.stderr


def docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def rendered(helm: str) -> dict[str, str]:
    return {name: template(helm, values) for name, values in VALUES.items()}


@pytest.fixture(scope="module")
def manifests(rendered: dict[str, str]) -> dict[str, list[Doc]]:
    return {name: docs(text) for name, text in rendered.items()}


def kind(objects: list[Doc], name: str) -> list[Doc]:
    return [o for o in objects if o["kind"] == name]


def one(objects: list[Doc], kind_: str, suffix: str) -> Doc:
    found = [o for o in kind(objects, kind_) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind_} *{suffix}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> Iterator[Doc]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def component(objects: list[Doc], name: str) -> list[Doc]:
    return [o for o in kind(objects, "Deployment") if o["metadata"]["labels"]["app.kubernetes.io/component"] == name]


def vllm_deployments(objects: list[Doc]) -> list[Doc]:
    return [o for o in component(objects, "model-server") if o["metadata"]["labels"]["guardserve.io/runtime"] == "vllm"]


# --- the tools' verdicts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUES)
def test_helm_lint_strict(helm: str, name: str) -> None:
    values = VALUES[name]
    done = run(helm, "lint", "--strict", str(CHART), *(["-f", str(values)] if values else []))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("name", VALUES)
def test_manifests_are_valid_kubernetes(rendered: dict[str, str], name: str) -> None:
    validate = tool("kubernetes-validate")
    done = run(validate, "--strict", "-k", KUBERNETES, "-", stdin=rendered[name])
    assert done.returncode == 0, done.stdout + done.stderr
    # every built-in kind was checked; only the CRD kinds (Prometheus Operator, KEDA) have no bundled schema
    unchecked = set(re.findall(r"Couldn't find schema for kind (\w+)", done.stdout + done.stderr))
    assert unchecked <= {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


@pytest.mark.slow
def test_checkov_finds_nothing(rendered: dict[str, str], tmp_path: Path) -> None:
    checkov = tool("checkov")
    for name, text in rendered.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    done = run(checkov, "--config-file", str(ROOT / ".checkov.yaml"), "-d", str(tmp_path),
               "--framework", "kubernetes", "-o", "json", "--quiet")  # fmt: skip
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 1000  # the scan really ran over every workload of the four renderings
    assert done.returncode == 0


# --- what the rendered manifests hold ---------------------------------------------------------------------------


def test_gpu_requests_match_tensor_parallel_size(manifests: dict[str, list[Doc]]) -> None:
    tp = {"guardserve-tiny": 1, "llama-3-1-8b": 2, "guardserve-tiny-gpu": 4}
    seen = set()
    for name in ("gpu", "multi-model"):
        for dep in vllm_deployments(manifests[name]):
            model = dep["metadata"]["labels"]["guardserve.io/model"]
            (vllm,) = pod_spec(dep)["containers"]
            resources = vllm["resources"]
            assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == tp[model]
            assert f"--tensor-parallel-size={tp[model]}" in vllm["args"]
            spec = pod_spec(dep)
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
            assert dep["spec"]["strategy"] == {"type": "Recreate"}  # no second pod waiting for the same GPUs
            seen.add(model)
    assert seen == set(tp)
    # the CPU default asks for no GPU at all
    for obj in kind(manifests["default"], "Deployment"):
        for container in containers(obj):
            assert "nvidia.com/gpu" not in json.dumps(container["resources"])


def test_nothing_runs_as_root_or_writes_its_image(manifests: dict[str, list[Doc]]) -> None:
    checked = 0
    for objects in manifests.values():
        for workload in (o for o in objects if o["kind"] in WORKLOADS):
            spec = pod_spec(workload)
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert spec["automountServiceAccountToken"] is False
            for container in containers(workload):
                sc = container["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, container["name"]
                assert sc["readOnlyRootFilesystem"] is True
                assert sc["allowPrivilegeEscalation"] is False
                assert sc["capabilities"] == {"drop": ["ALL"]}
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
                assert "limits" in container["resources"] and "requests" in container["resources"]
                checked += 1
    assert checked >= 15


def test_long_running_containers_have_probes(manifests: dict[str, list[Doc]]) -> None:
    for objects in manifests.values():
        for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
            for container in pod_spec(workload)["containers"]:
                assert "readinessProbe" in container and "livenessProbe" in container, container["name"]
        for dep in vllm_deployments(objects):
            (vllm,) = pod_spec(dep)["containers"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
        gateway = pod_spec(one(objects, "Deployment", "-gateway"))["containers"][0]
        assert gateway["readinessProbe"]["httpGet"]["path"] == "/health"


def services_by_name(objects: list[Doc]) -> dict[str, Doc]:
    return {s["metadata"]["name"]: s for s in kind(objects, "Service")}


def selects(service: Doc, workload: Doc) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


@pytest.mark.parametrize("name", VALUES)
def test_the_registry_points_each_model_at_its_service(
    manifests: dict[str, list[Doc]], name: str, tmp_path: Path
) -> None:
    objects = manifests[name]
    config = one(objects, "ConfigMap", "-config")
    registry = tmp_path / "registry.yaml"
    registry.write_text(config["data"]["registry.yaml"], encoding="utf-8")
    entries = load_registry(registry)  # the gateway's own loader accepts it
    services = services_by_name(objects)
    servers = component(objects, "model-server")
    assert entries
    for entry in entries:
        assert entry.engine == "openai" and entry.url is not None
        match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)/v1", entry.url)
        assert match, entry.url
        service_name, namespace, port = match.group(1), match.group(2), int(match.group(3))
        assert namespace == NAMESPACE
        service = services[service_name]
        assert port in [p["port"] for p in service["spec"]["ports"]]
        (target,) = [d for d in servers if selects(service, d)]
        container = pod_spec(target)["containers"][0]
        assert port in [p["containerPort"] for p in container["ports"]]
        served = [a for a in container.get("args", []) if a.startswith("--served-model-name=")]
        lora = [a.split("=")[0] for a in container.get("args", []) if "=/models/" in a and not a.startswith("--")]
        if served:  # vLLM: the upstream name is the served name or one of its LoRA adapters
            assert entry.upstream_model in {served[0].split("=", 1)[1], *lora}


def test_lora_adapters_are_served_and_registered(manifests: dict[str, list[Doc]]) -> None:
    objects = manifests["multi-model"]
    dep = one(objects, "Deployment", "-llama-3-1-8b")
    args = pod_spec(dep)["containers"][0]["args"]
    assert "--enable-lora" in args
    at = args.index("--lora-modules")
    assert args[at + 1 : at + 3] == ["support-v2=/models/adapters/support-v2", "billing-v1=/models/adapters/billing-v1"]
    registry = yaml.safe_load(one(objects, "ConfigMap", "-config")["data"]["registry.yaml"])["models"]
    assert registry["support-v2"]["url"] == registry["llama-3.1-8b"]["url"]
    assert registry["support-v2"]["context_length"] == 8192


def test_model_sources(manifests: dict[str, list[Doc]]) -> None:
    objects = manifests["multi-model"]
    from_pvc = pod_spec(one(objects, "Deployment", "-llama-3-1-8b"))
    volumes = {v["name"]: v for v in from_pvc["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "guardserve-models", "readOnly": True}
    assert "--model=/models/llama-3.1-8b-instruct" in from_pvc["containers"][0]["args"]
    from_image = pod_spec(one(objects, "Deployment", "-guardserve-tiny-gpu"))
    (init,) = from_image["initContainers"]
    assert init["image"].endswith("guardserve-tiny-model:0.1.0")
    assert init["command"] == ["sh", "-c", "cp -R /model/. /models/"]
    assert {v["name"]: v for v in from_image["volumes"]}["models"]["emptyDir"]


def peers(rule: Doc) -> list[Doc]:
    return list(rule.get("from", []))


def only_gateway(rule: Doc) -> bool:
    selectors = [p["podSelector"]["matchLabels"] for p in peers(rule) if "podSelector" in p]
    return selectors == [
        {
            "app.kubernetes.io/name": "guardserve",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "gateway",
        }
    ]


@pytest.mark.parametrize("name", VALUES)
def test_only_the_gateway_reaches_model_servers_and_redis(manifests: dict[str, list[Doc]], name: str) -> None:
    objects = manifests[name]
    policies = {p["metadata"]["name"].removeprefix(f"{RELEASE}-guardserve-"): p for p in kind(objects, "NetworkPolicy")}
    models = policies["model-servers"]["spec"]
    assert models["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "model-server"
    assert set(models["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = models["ingress"]
    assert only_gateway(rule)
    # besides the gateway only Prometheus's namespace, and only while the ServiceMonitor scrapes vLLM
    others = [p for p in peers(rule) if "podSelector" not in p]
    monitoring = name in ("gpu", "multi-model")
    assert others == (
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}] if monitoring else []
    )
    assert models["egress"] == [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
    if name == "external-redis":
        assert "redis" not in policies
    else:
        redis = policies["redis"]["spec"]
        (rule,) = redis["ingress"]
        assert only_gateway(rule) and len(peers(rule)) == 1
        assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}]
        assert redis["egress"] == []
    # every pod is covered by some policy
    selected = [p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policies.values()]
    for workload in (o for o in objects if o["kind"] in WORKLOADS):
        labels = (
            workload["metadata"]["labels"]
            if workload["kind"] == "Pod"
            else workload["spec"]["template"]["metadata"]["labels"]
        )
        assert labels["app.kubernetes.io/component"] in selected


def test_api_access_can_be_restricted_without_locking_out_helm_test(manifests: dict[str, list[Doc]]) -> None:
    gateway = one(manifests["external-redis"], "NetworkPolicy", "-gateway")["spec"]
    api, metrics = gateway["ingress"]
    components = [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in api["from"] if "podSelector" in p
    ]
    assert components == ["test"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in api["from"]
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    default = one(manifests["default"], "NetworkPolicy", "-gateway")["spec"]
    assert "from" not in default["ingress"][0]  # the API is open by default (an ingress controller in front)


def gateway_settings(objects: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings the gateway pod would build: its env, with the mounted secret files written under tmp_path."""
    dep = one(objects, "Deployment", "-gateway")
    (container,) = pod_spec(dep)["containers"]
    env = env_of(container)
    secret = kind(objects, "Secret")
    data: dict[str, str] = {}
    for s in secret:
        data |= s.get("stringData", {})
        data |= {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
    data.setdefault("admin-key", "gs-0123456789ab-" + "x" * 43)  # an existingSecret: made up here
    data.setdefault("pepper", "p" * 48)
    data.setdefault("url", "redis://managed.example:6379/0")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    for name, path in mounts.items():
        for item in volumes[name].get("secret", {}).get("items", []):
            file = tmp_path / path.lstrip("/") / item["path"]
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(data[item["key"]], encoding="utf-8")
    for key in [k for k in os.environ if k.startswith("GUARDSERVE_")]:
        monkeypatch.delenv(key)  # the suite's own test settings
    for key, value in env.items():
        if key.endswith("_FILE"):
            value = str(tmp_path / value.lstrip("/"))
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GUARDSERVE_REGISTRY")  # a path inside the pod
    monkeypatch.delenv("GUARDSERVE_GUARDRAILS__POLICY_FILE")
    return Settings()


@pytest.mark.parametrize("name", ["default", "external-redis"])
def test_the_gateway_pod_has_what_prod_mode_requires(
    manifests: dict[str, list[Doc]], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway_settings(manifests[name], tmp_path, monkeypatch)
    assert settings.mode == "prod"
    assert production_problems(settings) == []
    admin = settings.auth.admin_key_value()
    assert admin is not None and key_id_of(admin) is not None
    assert settings.redis.url is not None
    url = settings.redis.url.get_secret_value()
    if name == "default":
        assert url == f"redis://{RELEASE}-guardserve-redis.{NAMESPACE}.svc.cluster.local:6379/0"
        assert settings.limits.replicas == 10  # the HPA's maximum: the fail-open share stays within the limit
    else:
        assert url == "redis://managed.example:6379/0"  # from the existing Secret's file
        assert settings.limits.replicas == 3
    assert settings.observability.metrics_port == 9100


def test_generated_secrets_are_kept_and_existing_ones_are_not_created(manifests: dict[str, list[Doc]]) -> None:
    secret = one(manifests["default"], "Secret", "-secrets")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert kind(manifests["external-redis"], "Secret") == []
    volumes = {v["name"]: v for v in pod_spec(one(manifests["external-redis"], "Deployment", "-gateway"))["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "guardserve-secrets"
    assert volumes["redis-url"]["secret"] == {
        "secretName": "guardserve-redis",
        "defaultMode": 0o440,
        "items": [{"key": "url", "path": "url"}],
    }


def test_an_inline_external_url_becomes_a_secret_file(helm: str) -> None:
    objects = docs(template(helm, None, "redis.enabled=false", "redis.external.url=redis://:pw@r.example:6379/1"))
    secret = one(objects, "Secret", "-redis-url")
    assert secret["stringData"] == {"redis-url": "redis://:pw@r.example:6379/1"}
    (gateway,) = pod_spec(one(objects, "Deployment", "-gateway"))["containers"]
    env = env_of(gateway)
    assert env["GUARDSERVE_REDIS__URL_FILE"] == "/run/secrets/redis/url" and "GUARDSERVE_REDIS__URL" not in env
    assert "pw@" not in json.dumps(gateway)
    assert kind(objects, "StatefulSet") == []


def test_redis_persists_with_aof_on_a_volume(manifests: dict[str, list[Doc]]) -> None:
    sts = one(manifests["default"], "StatefulSet", "-redis")
    args = pod_spec(sts)["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"  # API keys are never evicted
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in pod_spec(sts)["containers"][0]["volumeMounts"]


def test_gateway_scaling_objects(manifests: dict[str, list[Doc]]) -> None:
    objects = manifests["default"]
    hpa = one(objects, "HorizontalPodAutoscaler", "-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-guardserve-gateway"
    assert "replicas" not in one(objects, "Deployment", "-gateway")["spec"]  # the HPA owns it
    pdb = one(objects, "PodDisruptionBudget", "-gateway")
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    fixed = one(manifests["external-redis"], "Deployment", "-gateway")
    assert fixed["spec"]["replicas"] == 3


def test_keda_scales_vllm_on_its_queue(manifests: dict[str, list[Doc]]) -> None:
    (scaled,) = kind(manifests["multi-model"], "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-guardserve-model-llama-3-1-8b"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert (
        trigger["metadata"]["query"]
        == 'sum(vllm:num_requests_waiting{namespace="guardserve", model_name="llama-3.1-8b"})'
    )
    assert trigger["metadata"]["threshold"] == "8"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 4)
    assert "replicas" not in one(manifests["multi-model"], "Deployment", "-llama-3-1-8b")["spec"]


def test_monitoring_objects_reuse_the_observability_files(manifests: dict[str, list[Doc]]) -> None:
    objects = manifests["gpu"]
    rule = one(objects, "PrometheusRule", "")
    assert rule["spec"] == yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text(encoding="utf-8"))
    dashboard = one(objects, "ConfigMap", "-dashboard")
    assert json.loads(dashboard["data"]["guardserve.json"]) == json.loads(
        (OBSERVABILITY / "grafana-dashboard.json").read_text(encoding="utf-8")
    )
    monitors = {m["metadata"]["name"]: m["spec"] for m in kind(objects, "ServiceMonitor")}
    assert monitors[f"{RELEASE}-guardserve"]["endpoints"][0]["port"] == "metrics"
    assert monitors[f"{RELEASE}-guardserve-vllm"]["selector"]["matchLabels"]["guardserve.io/runtime"] == "vllm"
    # files/ links to the originals instead of copying them
    for name in ("prometheus-rules.yaml", "grafana-dashboard.json", "policies.yaml"):
        assert (CHART / "files" / name).is_symlink()


def test_the_policy_configmap_is_the_repository_policy_file(manifests: dict[str, list[Doc]], tmp_path: Path) -> None:
    text = one(manifests["default"], "ConfigMap", "-config")["data"]["policies.yaml"]
    assert text.strip() == (ROOT / "guardrails" / "policies.yaml").read_text(encoding="utf-8").strip()
    file = tmp_path / "policies.yaml"
    file.write_text(text, encoding="utf-8")
    assert "default" in load_policies(file).policies


def test_helm_test_lists_every_model_through_the_gateway_service(manifests: dict[str, list[Doc]]) -> None:
    objects = manifests["multi-model"]
    pod = one(objects, "Pod", "-test-models")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    script, *models = container["args"]
    assert f"http://{RELEASE}-guardserve.{NAMESPACE}.svc.cluster.local:80/v1/models" in script
    registry = yaml.safe_load(one(objects, "ConfigMap", "-config")["data"]["registry.yaml"])["models"]
    assert sorted(models) == sorted(registry)
    compile(script, "helm-test", "exec")  # the script is valid Python


# --- values.schema.json and the template's own guards -----------------------------------------------------------


@pytest.mark.parametrize(
    ("heads", "tp", "ok"),
    [(4, 1, True), (4, 2, True), (4, 4, True), (32, 8, True), (4, 3, False), (9, 2, False), (4, 8, False)],
)
def test_tensor_parallel_size_must_divide_the_heads(helm: str, heads: int, tp: int, ok: bool) -> None:
    sets = [
        "engine.enabled=false",
        "vllm.models[0].name=m",
        f"vllm.models[0].numAttentionHeads={heads}",
        f"vllm.models[0].tensorParallelSize={tp}",
        "vllm.models[0].source.pvc.claimName=models",
    ]
    out = template(helm, None, *sets, check=False)
    if ok:
        assert f"--tensor-parallel-size={tp}" in out
    else:
        assert "values don't meet the specifications of the schema" in out, out
        assert f"vllm.models.0.numAttentionHeads: Must be a multiple of {tp}" in out, out


def test_the_template_guards_tensor_parallel_size_even_without_the_schema(helm: str) -> None:
    sets = ["engine.enabled=false", "vllm.models[0].name=m", "vllm.models[0].numAttentionHeads=4",
            "vllm.models[0].tensorParallelSize=3", "vllm.models[0].source.pvc.claimName=x"]  # fmt: skip
    done = run(
        helm, "template", RELEASE, str(CHART), "--skip-schema-validation", *[a for s in sets for a in ("--set", s)]
    )
    assert done.returncode != 0
    assert "tensorParallelSize 3 must divide numAttentionHeads 4" in done.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["engine.enabled=false"], "no model server"),
        (["redis.enabled=false"], "redis.external.url or redis.external.existingSecret"),
        (["vllm.models[0].name=m", "vllm.models[0].numAttentionHeads=4"], "vllm.models.0: source is required"),
        (
            [
                "vllm.models[0].name=m",
                "vllm.models[0].numAttentionHeads=4",
                "vllm.models[0].source.pvc.claimName=a",
                "vllm.models[0].source.initContainer.image=b",
            ],
            "Must validate one and only one schema (oneOf)",
        ),
        (["gateway.env.OTHER=1"], 'Property name of "OTHER" does not match'),
        (["redis.enabled=false", "redis.external.url=http://nope"], "redis.external.url: Does not match pattern"),
        (["containerSecurityContext.runAsNonRoot=false"], "containerSecurityContext.runAsNonRoot does not match"),
    ],
)
def test_bad_values_are_refused(helm: str, sets: list[str], message: str) -> None:
    done = run(helm, "template", RELEASE, str(CHART), *[a for s in sets for a in ("--set", s)])
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_notes_name_every_model_and_how_to_reach_them(helm: str, tmp_path: Path) -> None:
    # `helm template` does not render NOTES.txt (`install --dry-run` needs a cluster): include it from a wrapper
    chart = tmp_path / "guardserve"
    shutil.copytree(CHART, chart, symlinks=False)
    wrapper = 'notes: |\n{{- include (print $.Template.BasePath "/NOTES.txt") . | nindent 2 }}\n'
    (chart / "templates" / "notes-as-manifest.yaml").write_text(wrapper, encoding="utf-8")
    done = run(helm, "template", RELEASE, str(chart), "-n", NAMESPACE, "-f", str(VALUES["multi-model"]),
               "--show-only", "templates/notes-as-manifest.yaml")  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = yaml.safe_load(done.stdout)["notes"]
    for model, service in [("llama-3.1-8b", "llama-3-1-8b"), ("guardserve-tiny-gpu", "guardserve-tiny-gpu")]:
        url = f"http://{RELEASE}-guardserve-model-{service}.{NAMESPACE}.svc.cluster.local:8000/v1"
        assert f"- {model} (vllm): {url}" in notes
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes
    assert f"svc/{RELEASE}-guardserve 8000:80" in notes
