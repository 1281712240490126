"""The deployment files (docker-compose.yml, deploy/k8s, deploy/gateway/nginx.conf) agree
with the code: Settings, the CLI's service registry and the routes the services' routers
really serve, so a new route or setting cannot silently miss a gateway. No Docker needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from fastapi.routing import APIRoute

from postwire.registry import SERVICES
from postwire_common.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "gateway" / "nginx.conf"
K8S = ROOT / "deploy" / "k8s"
SECRET_KEYS = {
    "POSTWIRE_DATABASE_URL",
    "POSTWIRE_BROKER_URL",
    "POSTWIRE_ADMIN_TOKEN",
    "POSTWIRE_SECRET_KEYS",
}

# Routes of the table that no service serves yet: both gateways must already agree.
PLANNED = [
    ("POST", "/v1/domains/example.com/verify", "ingest"), ("POST", "/v1/templates", "ingest"),
    ("PUT", "/v1/tasks/t1/state", "ingest"), ("GET", "/v1/stats/sending", "events"),
    ("DELETE", "/v1/suppressions/ann@example.org", "events"), ("GET", "/t/o/abc", "events"),
    ("POST", "/v1/topics/t/subscriptions", "notifier"), ("PATCH", "/v1/event-rules/r", "notifier"),
    ("POST", "/v1/queues/q/receive", "notifier"),
]  # fmt: skip
UNROUTED = ["/v1", "/v2/messages", "/v1/messagesx", "/v1/domainsx", "/tx", "/metrics"]


class Location(NamedTuple):
    modifier: str  # "" (prefix), "=" (exact) or "~" (regular expression)
    pattern: str
    body: str


Nginx = tuple[list[Location], dict[str, dict[str, str]]]
Gateways = tuple[Nginx, dict[str, Any]]  # nginx.conf parsed, the HTTPRoute


def load_yaml(path: Path) -> list[Any]:
    """Every non-empty document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_objects(kind: str) -> dict[str, Any]:
    """The objects of one kind in deploy/k8s/*.yaml, by name."""
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in load_yaml(path)]
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def postwire_names(value: Any) -> set[str]:
    """Every ``POSTWIRE_*`` word in a YAML value, its mapping keys included."""
    if isinstance(value, dict):
        return set().union(*(postwire_names(k) | postwire_names(v) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(postwire_names(v) for v in value))
    return set(re.findall(r"\bPOSTWIRE_[A-Z0-9_]+", str(value)))


def settings_from(env: dict[str, Any]) -> Settings:
    """Validate POSTWIRE_* values as a service would (they win over the environment)."""
    fields: dict[str, Any] = {k.removeprefix("POSTWIRE_").lower(): v for k, v in env.items()}
    return Settings(_env_file=None, **fields)


def parse_nginx(text: str) -> Nginx:
    """The location blocks in file order, and each ``map $request_method $var`` as
    {var: {method or "default": value}}. A location body holds no braces but in '...';
    the ^~ and ~* forms are refused, since nginx_target does not model them."""
    text = re.sub(r"#[^\n]*", "", text)
    block = r"location\s+(?:(=|\^~|~\*?)\s+)?([^\s{]+)\s*\{((?:'[^']*'|[^{}'])*)\}"
    locations = [
        Location(m[1] or "", m[2], m[3])
        for m in re.finditer(block, text)
        if not m[2].startswith("@")  # named locations serve error_page only
    ]
    assert all(loc.modifier in ("", "=", "~") for loc in locations)
    maps = {
        m[1]: dict(re.findall(r"(\S+)\s+(\S+);", m[2]))
        for m in re.finditer(r"map\s+\$request_method\s+\$(\w+)\s*\{([^{}]*)\}", text)
    }
    # The vendors' action map: its source string, then "~regex" or default entries.
    for m in re.finditer(r'map\s+"([^"]+)"\s+\$(\w+)\s*\{([^{}]*)\}', text):
        entries = dict(re.findall(r'"?(~[^"\s]+|default)"?\s+(\S+);', m[3]))
        maps[m[2]] = {ACTION_SOURCE: m[1], **entries}
    return locations, maps


ACTION_SOURCE = "$source"
# Request facts the action map reads, by the nginx variable that holds each.
ActionFacts = dict[str, str]


def map_value(table: dict[str, str], method: str, facts: ActionFacts) -> str:
    """nginx's map lookup: by method, or (the action map) the first matching regex."""
    if ACTION_SOURCE not in table:
        return table.get(method, table["default"])
    source = re.sub(r"\$(\w+)", lambda v: facts.get(v[1], ""), table[ACTION_SOURCE])
    for key, value in table.items():
        if key.startswith("~") and re.search(key[1:], source):
            return value
    return table["default"]


def nginx_target(nginx: Nginx, method: str, path: str, facts: ActionFacts | None = None) -> str:
    """Where nginx sends METHOD PATH: an upstream's name, or the status a ``return`` gives.

    nginx's order: an exact (=) location; else the first regular expression (~) in file
    order that matches; else the longest matching prefix.
    """
    locations, maps = nginx
    exact = [loc for loc in locations if loc.modifier == "=" and loc.pattern == path]
    regexes = [loc for loc in locations if loc.modifier == "~" and re.search(loc.pattern, path)]
    prefixes = [loc for loc in locations if not loc.modifier and path.startswith(loc.pattern)]
    prefixes.sort(key=lambda loc: len(loc.pattern), reverse=True)
    assert exact or regexes or prefixes, f"no nginx location for {path}"
    chosen = (exact or regexes or prefixes)[0]
    if proxy := re.search(r"proxy_pass\s+http://(\$?)([\w-]+)\s*;", chosen.body):
        if not proxy[1]:
            return proxy[2]
        return map_value(maps[proxy[2]], method, facts or {})
    answer = re.search(r"return\s+(\d{3})", chosen.body)
    assert answer, f"location {chosen.pattern} neither proxies nor returns"
    return answer[1]


def prefix_matches(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: whole path elements, so /v1/messages matches /v1/messages
    and /v1/messages/x but not /v1/messagesx; a trailing / in the prefix is ignored."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def httproute_target(
    route: dict[str, Any],
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> str | None:
    """The backend of the HTTPRoute rule that wins METHOD PATH, or None (the Gateway's 404).

    Gateway API precedence between matches: Exact path over PathPrefix, then the longest
    path value, then a match with a method over one without, then the most header
    matches, then the most query parameter matches; then rule order.
    """
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    asked = query or {}
    candidates = []
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            kind, value = match["path"]["type"], match["path"]["value"]
            hit = path == value if kind == "Exact" else prefix_matches(value, path)
            wanted_headers = match.get("headers", [])
            wanted_query = match.get("queryParams", [])
            hit = hit and all(sent.get(h["name"].lower()) == h["value"] for h in wanted_headers)
            hit = hit and all(asked.get(q["name"]) == q["value"] for q in wanted_query)
            if hit and match.get("method", method) == method:
                rank = (
                    kind == "Exact", len(value), "method" in match,
                    len(wanted_headers), len(wanted_query),
                )  # fmt: skip
                candidates.append((rank, rule))
    if not candidates:
        return None
    best = max(candidates, key=lambda candidate: candidate[0])[1]  # the first of equals
    (backend,) = best["backendRefs"]
    assert backend["port"] == 8080
    return str(backend["name"])


def both(gateways: Gateways, method: str, path: str) -> tuple[str, str | None]:
    """Where (nginx, the HTTPRoute) send METHOD PATH."""
    nginx, route = gateways
    return nginx_target(nginx, method, path), httproute_target(route, method, path)


@pytest.fixture(scope="module")
def gateways() -> Gateways:
    return parse_nginx(NGINX_CONF.read_text()), k8s_objects("HTTPRoute")["postwire-api"]


@pytest.fixture
async def served() -> list[tuple[str, str, str]]:
    """(method, path with a sample value for each parameter, service) of every API route,
    read from the routers of the services themselves (built, never started)."""
    settings = Settings(_env_file=None, database_url="postgresql://postgres@127.0.0.1:5432/unused")
    routes = []
    for name, service_class in SERVICES.items():
        service = service_class(settings)
        for router in service.routers:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                path = re.sub(r"\{[^}]+\}", "sample", route.path)
                routes += [(method, path, name) for method in route.methods or ()]
        await service.stop()
    return routes


def test_every_postwire_variable_is_a_setting() -> None:
    compose_env = load_yaml(COMPOSE)[0]["x-postwire"]["environment"]
    config = k8s_objects("ConfigMap")["postwire-config"]["data"]
    workloads = [*k8s_objects("Deployment").values(), *k8s_objects("Job").values()]
    named = postwire_names([load_yaml(COMPOSE), config, workloads])
    named |= postwire_names((ROOT / "Dockerfile").read_text())
    assert named - {f"POSTWIRE_{field.upper()}" for field in Settings.model_fields} == set()
    assert set(compose_env) >= SECRET_KEYS
    settings_from(
        {
            **compose_env,
            "POSTWIRE_ADMIN_TOKEN": "x" * 16,
            "POSTWIRE_SECRET_KEYS": "pD1d0f8Xb3k1Xo8nq5r3x2Q9c5Jg7nY3uKx0n2Q4m1E=",
        }
    )
    settings_from(config)
    assert not SECRET_KEYS & set(config), "secrets belong in the Secret postwire-secrets"
    for workload in workloads:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert container["envFrom"] == [{"configMapRef": {"name": "postwire-config"}}]
            for var in container["env"]:
                ref = var["valueFrom"]["secretKeyRef"]
                if ref["name"] == "postwire-smtp-tls":  # a kubernetes.io/tls Secret
                    tls_keys = {
                        "POSTWIRE_SMTP_TLS_CERT": "tls.crt",
                        "POSTWIRE_SMTP_TLS_KEY": "tls.key",
                    }
                    assert tls_keys[var["name"]] == ref["key"]
                    assert ref["optional"] is True  # self-signed without it
                    continue
                assert ref["name"] == "postwire-secrets"
                assert var["name"] == ref["key"]
                assert ref["key"] in SECRET_KEYS


def test_compose_runs_every_service_from_one_image() -> None:
    services = load_yaml(COMPOSE)[0]["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    images = {(services[n]["build"], services[n]["image"]) for n in [*SERVICES, "migrate"]}
    assert images == {(".", "postwire:dev")}
    gateway = services["gateway"]
    assert "./deploy/gateway/nginx.conf:/etc/nginx/nginx.conf:ro" in gateway["volumes"]
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["run", name]
        assert "http://127.0.0.1:8080/readyz" in " ".join(service["healthcheck"]["test"])
        needs = {dep: cond["condition"] for dep, cond in service["depends_on"].items()}
        assert needs["migrate"] == "service_completed_successfully"
        assert needs["rabbitmq"] == "service_healthy"
        assert gateway["depends_on"][name] == {"condition": "service_healthy"}


def test_k8s_deploys_every_service() -> None:
    deployments, k8s_services = k8s_objects("Deployment"), k8s_objects("Service")
    assert set(deployments) == set(k8s_services) == set(SERVICES)
    (job,) = k8s_objects("Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == migrate["image"]
        assert container["args"] == ["run", name]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        # Every service keeps or checks something under these keys (stored secrets, DKIM
        # keys, tracking tokens) and refuses to start in production without them.
        assert "POSTWIRE_SECRET_KEYS" in {v["name"] for v in container["env"]}, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service = k8s_services[name]["spec"]
        assert service["selector"].items() <= labels.items()
        ports = [(p["port"], p["targetPort"]) for p in service["ports"]]
        assert ports[0] == (8080, 8080)
        config = k8s_objects("ConfigMap")["postwire-config"]["data"]
        if name == "delivery":  # the inbound MX: port 25 to the pods' POSTWIRE_INBOUND_PORT
            inbound = int(config["POSTWIRE_INBOUND_PORT"])
            assert ports[1:] == [(25, inbound)]
            assert {"name": "inbound-smtp", "containerPort": inbound} in container["ports"]
        elif name == "ingest":  # SMTP submission: 587 and 465 to the pods' listeners
            starttls, tls = int(config["POSTWIRE_SMTP_PORT"]), int(config["POSTWIRE_SMTPS_PORT"])
            assert ports[1:] == [(587, starttls), (465, tls)]
            assert {"name": "submission", "containerPort": starttls} in container["ports"]
            assert {"name": "submissions", "containerPort": tls} in container["ports"]
        else:
            assert ports == [(8080, 8080)]


def test_nginx_upstreams_are_the_services(gateways: Gateways) -> None:
    upstream = r"upstream\s+([\w-]+)\s*\{\s*server\s+(\S+?);"
    upstreams = dict(re.findall(upstream, NGINX_CONF.read_text()))
    assert upstreams == {name: f"{name}:8080" for name in upstreams}
    assert set(upstreams) <= set(SERVICES)
    assert both(gateways, "GET", "/healthz") == ("200", None)


async def test_each_api_route_reaches_its_service(
    served: list[tuple[str, str, str]], gateways: Gateways
) -> None:
    assert {service for _, _, service in served} == {"ingest", "events", "notifier"}
    assert ("POST", "/v1/messages", "ingest") in served
    assert ("GET", "/v1/messages/sample", "events") in served
    wrong = [
        f"{method} {path} is served by {service}; nginx sends it to {to[0]}, HTTPRoute to {to[1]}"
        for method, path, service in served
        if (to := both(gateways, method, path)) != (service, service)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("method", "path", "service"), PLANNED)
def test_planned_routes_agree(gateways: Gateways, method: str, path: str, service: str) -> None:
    assert both(gateways, method, path) == (service, service)


def test_both_gateways_route_the_same_table(gateways: Gateways) -> None:
    rules = gateways[1]["spec"]["rules"]
    prefixes = {match["path"]["value"] for rule in rules for match in rule["matches"]}
    for prefix in prefixes:
        for path in (prefix, f"{prefix}/x"):
            for method in ("GET", "POST", "PUT", "DELETE"):
                nginx_to, route_to = both(gateways, method, path)
                # nginx's own 404 and the Gateway's (no rule) are the same answer.
                assert (None if nginx_to == "404" else nginx_to) == route_to, f"{method} {path}"
    for path in UNROUTED:
        assert both(gateways, "GET", path) == ("404", None), path


async def test_each_vendor_action_reaches_its_service(gateways: Gateways) -> None:
    """POST / with each action a service answers (Service.actions), named each way its
    vendor's SDKs name it, reaches that service; an unknown action reaches ingest, which
    answers the vendor's own error for it."""
    settings = Settings(_env_file=None, database_url="postgresql://postgres@127.0.0.1:5432/unused")
    owned = []
    for name, service_class in SERVICES.items():
        service = service_class(settings)
        owned += [(action.dialect.name, action.name, name) for action in service.actions]
        await service.stop()
    assert {service for _, _, service in owned} == {"ingest", "events"}
    owned += [
        ("tencent", "ListBlackEmailAddress", "ingest"),
        ("aliyun", "GetIpProtection", "ingest"),
    ]
    nginx, route = gateways
    wrong = []
    for dialect, action, service in owned:
        ways: list[tuple[ActionFacts, dict[str, str], dict[str, str]]] = (
            [({"http_x_tc_action": action}, {"X-TC-Action": action}, {})]
            if dialect == "tencent"
            else [
                ({"http_x_acs_action": action}, {"x-acs-action": action}, {}),  # ACS3
                ({"arg_Action": action}, {}, {"Action": action}),  # RPC HMAC-SHA1
            ]
        )
        for facts, headers, query in ways:
            to = (
                nginx_target(nginx, "POST", "/", facts),
                httproute_target(route, "POST", "/", headers, query),
            )
            if to != (service, service):
                wrong.append(f"{dialect} {action} {facts}: nginx {to[0]}, HTTPRoute {to[1]}")
    assert not wrong, "\n".join(wrong)
