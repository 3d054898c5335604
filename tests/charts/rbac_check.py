"""Map API requests to RBAC terms and decide whether rendered RBAC objects allow them (as kube-apiserver's
RBAC authorizer would, for the rule forms our chart uses: no nonResourceURLs). A rule with resourceNames
allows only requests naming one of them in the URL, so never a create or a list (their URL has no name)."""

from __future__ import annotations

from dataclasses import dataclass

DISCOVERY_ROOTS = ("/api", "/apis", "/version", "/openapi")


@dataclass(frozen=True)
class Access:
    verb: str
    group: str
    resource: str  # with "/subresource" when there is one
    namespace: str | None  # None: cluster-scoped, or across all namespaces
    name: str | None = None  # the object named in the URL (get, update, patch, delete)

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{named}{where}"


def to_access(method: str, path: str, query: dict[str, str]) -> Access | None:
    """None for discovery (GET /api, /apis/<group>/<version>...), which every authenticated user may read."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[3:]
    else:
        raise ValueError(f"not a Kubernetes API path: {path}")
    if not rest:
        if method != "GET":
            raise ValueError(f"{method} on discovery path {path}")
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update",
                "DELETE": "delete" if name else "deletecollection"}[method]
    return Access(verb, group, f"{resource}/{sub}" if sub else resource, namespace, name)


def _rule_allows(rule: dict, access: Access) -> bool:
    def has(values: list[str], value: str) -> bool:
        return "*" in values or value in values

    names = rule.get("resourceNames")
    return (has(rule.get("verbs", []), access.verb) and has(rule.get("apiGroups", []), access.group)
            and has(rule.get("resources", []), access.resource) and (not names or access.name in names))


def allowed(access: Access, manifests: list[dict], service_account: tuple[str, str]) -> bool:
    """True when a binding of `service_account` (namespace, name) grants `access`."""
    roles = {(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc.get("rules", [])
             for doc in manifests if doc.get("kind") in ("ClusterRole", "Role")}
    for binding in manifests:
        if binding.get("kind") not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        subjects = {(s.get("namespace"), s["name"]) for s in binding.get("subjects", []) if s["kind"] == "ServiceAccount"}
        if service_account not in subjects:
            continue
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        if scope is not None and access.namespace != scope:
            continue  # a RoleBinding grants nothing outside its namespace, nor cluster-wide
        ref = binding["roleRef"]
        rules = roles.get((ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"]), [])
        if any(_rule_allows(rule, access) for rule in rules):
            return True
    return False
