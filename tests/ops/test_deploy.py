"""deploy/: the Kubernetes example parses and agrees with its gateway config (probe paths and
ports, the mount, the Secret's env, Redis, the grace periods); the Containerfile runs the
gateway the way the docs say. (No image is built here: no container runtime in the tests.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from gateway.config import GatewayConfig, load_file
from gateway.naming import DnsName, parse_address

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
MOUNT = "/etc/gateway"


def documents(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, for every document of deploy/k8s/<name>."""
    text = (K8S / name).read_text(encoding="utf-8")
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def gateway_container(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod = manifests["Deployment", "gateway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def config() -> GatewayConfig:
    return load_file(K8S / "config" / "gateway.yaml")


def test_manifests_parse_and_hold_what_the_example_promises() -> None:
    manifests = documents("gateway.yaml") | documents("redis.yaml")
    assert set(manifests) >= {("Deployment", "gateway"), ("Service", "gateway"),
                              ("Service", "gateway-ops"), ("Secret", "gateway-admin"),
                              ("Deployment", "gateway-redis"), ("Service", "gateway-redis")}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(kustomization["resources"]) == {"gateway.yaml", "redis.yaml"}
    (generated,) = kustomization["configMapGenerator"]
    assert generated["name"] == "gateway-config"
    assert generated["files"] == ["config/gateway.yaml", "config/descriptors.binpb"]


def test_backends_are_headless_services_resolved_to_every_pod() -> None:
    """A ClusterIP name is one connection, so one pod: every backend is dns:/// of a headless
    Service whose port is the address's port."""
    services = documents("backends.yaml")
    for name, backend in config().backends.items():
        (address,) = backend.addresses
        parsed = parse_address(address)
        assert isinstance(parsed, DnsName) and parsed.nameserver is None
        service = services["Service", f"{name}-headless"]["spec"]
        assert service["clusterIP"] == "None"
        assert parsed.host == f"{name}-headless.demo.svc.cluster.local"
        assert [p["port"] for p in service["ports"]] == [parsed.port]


def test_probes_and_ports_match_the_config() -> None:
    manifests = documents("gateway.yaml")
    container = gateway_container(manifests)
    listen = config().listen
    assert listen.rest is not None and listen.grpc is not None and listen.ops is not None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"rest": listen.rest.port, "grpc": listen.grpc.port, "ops": listen.ops.port}
    assert {listen.rest.host, listen.grpc.host, listen.ops.host} == {"0.0.0.0"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "rest"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "rest"}
    for service in ("gateway", "gateway-ops"):
        for port in manifests["Service", service]["spec"]["ports"]:
            assert port["targetPort"] in ports
    template = manifests["Deployment", "gateway"]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == listen.ops.port


def test_config_mount_secret_redis_and_grace_agree() -> None:
    manifests = documents("gateway.yaml") | documents("redis.yaml")
    container = gateway_container(manifests)
    settings = config()
    pod = manifests["Deployment", "gateway"]["spec"]["template"]["spec"]
    # The ConfigMap is mounted whole (so edits arrive) where --config points.
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == MOUNT and "subPath" not in mount
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == "gateway-config"
    assert container["args"] == ["serve", "--config", f"{MOUNT}/gateway.yaml"]
    assert settings.descriptors.descriptor_set == K8S / "config" / "descriptors.binpb"
    # The admin digest's variable comes from the Secret, which holds a digest.
    assert settings.admin is not None
    (env,) = [e for e in container["env"] if e["name"] == settings.admin.token_sha256_env]
    key = env["valueFrom"]["secretKeyRef"]
    secret = manifests["Secret", key["name"]]["stringData"][key["key"]]
    assert secret == hashlib.sha256(b"change-me").hexdigest()
    # Limits are shared through the Redis Service.
    assert settings.rate_limits.store == "redis"
    redis_port = manifests["Service", "gateway-redis"]["spec"]["ports"][0]["port"]
    assert settings.rate_limits.redis.url.startswith(f"redis://gateway-redis:{redis_port}/")
    # The kubelet waits longer than preStop plus the gateway's own drain.
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + settings.shutdown_grace_s
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_containerfile_installs_pinned_and_runs_serve_unprivileged() -> None:
    lines = [line.strip() for line in (DEPLOY / "Containerfile").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any("pip install -c requirements.lock ." in line for line in lines)
    assert "USER 10001" in lines
    assert 'CMD ["serve", "--config", "/etc/gateway/gateway.yaml"]' in lines
    assert 'ENTRYPOINT ["python", "-m", "gateway"]' in lines
    listen = config().listen
    assert listen.rest is not None and listen.grpc is not None and listen.ops is not None
    assert f"EXPOSE {listen.rest.port} {listen.grpc.port} {listen.ops.port}" in lines
    pod = documents("gateway.yaml")["Deployment", "gateway"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001


def test_the_kubernetes_config_signs_callers_in_for_writes() -> None:
    loaded = config()
    (issuer,) = loaded.auth.issuers
    assert issuer.jwks_url is not None and issuer.jwks_url.startswith("https://")
    rules = {rule.match: rule for rule in loaded.authorization.rules}
    assert rules["/users.v1.Users/DeleteUser"].roles == ("admin",)
    for write in ("/users.v1.Users/CreateUser", "/users.v1.Users/UpdateUser",
                  "/orders.v1.Orders/CreateOrder", "/orders.v1.Orders/CancelOrder"):
        assert rules[write].access == "authenticated"
