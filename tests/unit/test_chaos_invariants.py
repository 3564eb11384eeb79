"""The chaos invariant checker's multi-tenancy rules fire on a world that breaks them, and stay quiet on one
that does not. Worlds are plain data (objects, an emulator state dump, a request log), so no server runs.

Proves: ``public-by-invoker-iam-disabled`` (a stored service, and an operator write), ``foreign-adoption``
(a service someone else made, owned without the right to adopt; adoption after the operator's own
abandoned-by mark, or by a rule's adoptServiceNames, is fine), ``runtime-identity-outside-policy`` (the
operator's own account; an account no selecting rule allows; the default compute account).
"""

from __future__ import annotations

from typing import Any

from testworld.invariants import OWNER_LABEL, World, check, owner_label

CLUSTER = "cluster-1"
NS = "team-a"
KEY = "111111111111/asia-northeast1/web"
PATH = "/v2/projects/test-project/locations/asia-northeast1/services"
OPERATOR_SA = "iaprun@platform.iam.gserviceaccount.com"
TENANCY = {
    "rules": [
        {
            "name": "team-a",
            "namespaces": ["team-a"],
            "serviceAccounts": ["*@test-project.iam.gserviceaccount.com"],
            "adoptServiceNames": ["legacy-*"],
        }
    ]
}
LABEL = owner_label(CLUSTER, NS, "web")


def obj(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": "web", "generation": 1},
        "spec": {"projectID": "test-project", "region": "asia-northeast1", **spec},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "R", "message": "m"}],
        },
    }


def service(**fields: Any) -> dict[str, Any]:
    return {
        "labels": {OWNER_LABEL: LABEL},
        "template": {"serviceAccount": "app@test-project.iam.gserviceaccount.com"},
        **fields,
    }


def create(seq: int, *, caller: str = "", labels: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "method": "run.services.create",
        "path": PATH,
        "query": {"serviceId": "web"},
        "caller": caller,
        "status": 200,
        "body": {"labels": {OWNER_LABEL: LABEL} if labels is None else labels, **body},
    }


def patch(seq: int, **body: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "method": "run.services.patch",
        "path": f"{PATH}/web",
        "query": {},
        "caller": "",
        "status": 200,
        "body": body,
    }


def fired(rule: str, world: World, **kw: Any) -> list[str]:
    found = check(world, cluster_id=CLUSTER, settled=False, **kw)
    return [v.subject for v in found if v.rule == rule]


def world(o: dict[str, Any], svc: dict[str, Any], requests: list[dict[str, Any]]) -> World:
    return World(
        objects=[o], state={"projects": {"test-project": "111111111111"}, "services": {KEY: svc}}, requests=requests
    )


def test_public_by_invoker_iam_disabled() -> None:
    public = service(invokerIamDisabled=True)
    assert fired("public-by-invoker-iam-disabled", world(obj(), public, [create(1)])) == [KEY]
    # The object asks for it: fine without a policy, refused by a policy whose rule does not allow it.
    asked = obj(invokerIamDisabled=True)
    assert fired("public-by-invoker-iam-disabled", world(asked, public, [create(1)])) == []
    assert fired("public-by-invoker-iam-disabled", world(asked, public, [create(1)]), tenancy=TENANCY) == [KEY]
    allowing = {"rules": [{**TENANCY["rules"][0], "allowPublicAccess": True}]}
    assert fired("public-by-invoker-iam-disabled", world(asked, public, [create(1)]), tenancy=allowing) == []
    # The operator's own write is judged even if the switch is gone by the time the world is read.
    sent = [create(1, invokerIamDisabled=True)]
    assert fired("public-by-invoker-iam-disabled", world(obj(), service(), sent)) == [KEY]


def test_foreign_adoption() -> None:
    someone = [create(1, caller="user:bob@example.com", labels={})]
    assert fired("foreign-adoption", world(obj(), service(), someone)) == [KEY]
    assert fired("foreign-adoption", world(obj(adoption="IfUnowned"), service(), someone)) == []
    assert fired("foreign-adoption", world(obj(adoption="IfUnowned"), service(), someone), tenancy=TENANCY) == [KEY]
    # Taking back what the operator itself marked abandoned by this object needs no rule.
    back = [*someone, patch(2, annotations={"iaprun.dev/abandoned-by": LABEL})]
    assert fired("foreign-adoption", world(obj(adoption="IfUnowned"), service(), back), tenancy=TENANCY) == []
    # A mark written by someone else proves nothing.
    forged = [*someone, {**patch(2, annotations={"iaprun.dev/abandoned-by": LABEL}), "caller": "user:eve@example.com"}]
    assert fired("foreign-adoption", world(obj(adoption="IfUnowned"), service(), forged), tenancy=TENANCY) == [KEY]
    # Made by the operator for this object: fine; made for another object (its label then rewritten): not.
    assert fired("foreign-adoption", world(obj(), service(), [create(1)])) == []
    assert fired("foreign-adoption", world(obj(), service(), [create(1, labels={OWNER_LABEL: "other"})])) == [KEY]
    # The creation is not in the log: not judged.
    assert fired("foreign-adoption", world(obj(), service(), [])) == []


def test_foreign_adoption_allowed_by_adopt_service_names() -> None:
    key = "111111111111/asia-northeast1/legacy-web"
    o = obj(adoption="IfUnowned", serviceName="legacy-web")
    someone = [{**create(1, caller="user:bob@example.com", labels={}), "query": {"serviceId": "legacy-web"}}]
    w = World(
        objects=[o],
        state={"projects": {"test-project": "111111111111"}, "services": {key: service()}},
        requests=someone,
    )
    assert fired("foreign-adoption", w, tenancy=TENANCY) == []


def test_runtime_identity_outside_policy() -> None:
    as_operator = service(template={"serviceAccount": OPERATOR_SA})
    assert fired(
        "runtime-identity-outside-policy", world(obj(), as_operator, [create(1)]), operator_service_account=OPERATOR_SA
    ) == [KEY]
    other = service(template={"serviceAccount": "app@team-b.iam.gserviceaccount.com"})
    assert fired("runtime-identity-outside-policy", world(obj(), other, [create(1)])) == []
    assert fired("runtime-identity-outside-policy", world(obj(), other, [create(1)]), tenancy=TENANCY) == [KEY]
    assert fired("runtime-identity-outside-policy", world(obj(), service(), [create(1)]), tenancy=TENANCY) == []
    default = service(template={"serviceAccount": "111111111111-compute@developer.gserviceaccount.com"})
    assert fired("runtime-identity-outside-policy", world(obj(), default, [create(1)]), tenancy=TENANCY) == [KEY]
    allowing = {"rules": [{**TENANCY["rules"][0], "allowDefaultServiceAccount": True}]}
    assert fired("runtime-identity-outside-policy", world(obj(), default, [create(1)]), tenancy=allowing) == []
    # No rule selects the namespace: nothing is allowed.
    elsewhere = {"rules": [{**TENANCY["rules"][0], "namespaces": ["team-b"]}]}
    assert fired("runtime-identity-outside-policy", world(obj(), service(), [create(1)]), tenancy=elsewhere) == [KEY]
