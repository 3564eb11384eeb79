"""IAM policy planning: what the operator writes to the service and IAP policies, and what it never touches.

Covers: invoker grant idempotence, public invoker removal vs Report, agent removal when IAP is off,
authoritative vs additive accessors (foreign members, the ledger), expiry conditions, a property:
planning twice in a row never writes the second time, and properties that no conditional binding is
ever widened (Additive leaves foreign bindings exactly as found; Authoritative reports what it removes).
Pure functions: no mocks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from iaprun_operator.core.iam import EXPIRY_TITLE, expiry_of, plan_accessors, plan_invoker
from iaprun_operator.core.model import Accessor, AccessorsPolicy
from iaprun_operator.core.names import IAP_ACCESSOR_ROLE, RUN_INVOKER_ROLE

AGENT = "serviceAccount:service-123@gcp-sa-iap.iam.gserviceaccount.com"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def members(policy: dict, role: str) -> set[str]:
    return {m for b in policy.get("bindings", []) if b["role"] == role for m in b["members"]}


def test_invoker_grant_added_once_and_other_bindings_kept() -> None:
    policy = {"etag": "ACAB", "bindings": [{"role": "roles/run.developer", "members": ["user:a@example.com"]}]}
    plan = plan_invoker(policy, agent_member=AGENT, grant=True, remove_public=True, protect=True)
    assert plan.policy is not None
    assert members(plan.policy, RUN_INVOKER_ROLE) == {AGENT}
    assert members(plan.policy, "roles/run.developer") == {"user:a@example.com"}
    assert plan.policy["etag"] == "ACAB"
    again = plan_invoker(plan.policy, agent_member=AGENT, grant=True, remove_public=True, protect=True)
    assert again.policy is None


def test_public_invoker_removed_by_default_and_kept_on_report() -> None:
    policy = {"bindings": [{"role": RUN_INVOKER_ROLE, "members": ["allUsers", AGENT, "user:b@example.com"]}]}
    removed = plan_invoker(policy, agent_member=AGENT, grant=True, remove_public=True, protect=True)
    assert removed.public_members == ("allUsers",)
    assert removed.policy is not None
    assert members(removed.policy, RUN_INVOKER_ROLE) == {AGENT, "user:b@example.com"}
    reported = plan_invoker(policy, agent_member=AGENT, grant=True, remove_public=False, protect=True)
    assert reported.public_members == ("allUsers",)
    assert reported.policy is None


def test_iap_off_removes_only_the_agent() -> None:
    policy = {"bindings": [{"role": RUN_INVOKER_ROLE, "members": [AGENT, "user:b@example.com"]}]}
    plan = plan_invoker(policy, agent_member=AGENT, grant=False, remove_public=True, protect=False)
    assert plan.policy is not None
    assert members(plan.policy, RUN_INVOKER_ROLE) == {"user:b@example.com"}


def test_authoritative_owns_the_role_and_reports_removals() -> None:
    policy = {
        "bindings": [
            {"role": IAP_ACCESSOR_ROLE, "members": ["user:stranger@example.com", "group:devs@example.com"]},
            {"role": "roles/iap.admin", "members": ["user:admin@example.com"]},
        ]
    }
    plan = plan_accessors(
        policy, [Accessor("group:devs@example.com")], mode=AccessorsPolicy.AUTHORITATIVE, ledger=(), now=NOW
    )
    assert plan.policy is not None
    assert members(plan.policy, IAP_ACCESSOR_ROLE) == {"group:devs@example.com"}
    assert members(plan.policy, "roles/iap.admin") == {"user:admin@example.com"}
    assert plan.removed == ("user:stranger@example.com",)


def test_additive_keeps_foreign_members_and_removes_only_its_own() -> None:
    policy = {
        "bindings": [{"role": IAP_ACCESSOR_ROLE, "members": ["user:stranger@example.com", "user:old@example.com"]}]
    }
    plan = plan_accessors(
        policy,
        [Accessor("user:new@example.com")],
        mode=AccessorsPolicy.ADDITIVE,
        ledger=("user:old@example.com",),
        now=NOW,
    )
    assert plan.policy is not None
    assert members(plan.policy, IAP_ACCESSOR_ROLE) == {"user:stranger@example.com", "user:new@example.com"}
    assert plan.foreign == ("user:stranger@example.com",)
    assert plan.removed == ("user:old@example.com",)
    assert plan.ledger == ("user:new@example.com",)


def test_expiring_accessor_gets_a_version_3_condition_and_vanishes_after_expiry() -> None:
    later = NOW + timedelta(minutes=1)
    plan = plan_accessors(
        {}, [Accessor("user:temp@example.com", later)], mode=AccessorsPolicy.AUTHORITATIVE, ledger=(), now=NOW
    )
    assert plan.policy is not None
    assert plan.policy["version"] == 3
    (binding,) = plan.policy["bindings"]
    assert binding["condition"]["title"] == EXPIRY_TITLE
    assert expiry_of(binding["condition"]) == later
    assert plan.next_expiry == later
    after = plan_accessors(
        plan.policy,
        [Accessor("user:temp@example.com", later)],
        mode=AccessorsPolicy.AUTHORITATIVE,
        ledger=(),
        now=later + timedelta(seconds=1),
    )
    assert after.expired == ("user:temp@example.com",)
    assert after.policy is not None
    assert members(after.policy, IAP_ACCESSOR_ROLE) == set()


_member = st.sampled_from(
    ["user:a@example.com", "user:b@example.com", "group:g@example.com", "domain:example.com", "serviceAccount:s@x.com"]
)
_policy = st.lists(
    st.tuples(st.sampled_from([IAP_ACCESSOR_ROLE, "roles/other"]), st.lists(_member, max_size=3)), max_size=4
).map(lambda bs: {"etag": "E", "bindings": [{"role": r, "members": m} for r, m in bs]})


@given(policy=_policy, wanted=st.lists(_member, unique=True, max_size=4), additive=st.booleans())
def test_planning_is_idempotent_and_never_touches_other_roles(policy: dict, wanted: list[str], additive: bool) -> None:
    mode = AccessorsPolicy.ADDITIVE if additive else AccessorsPolicy.AUTHORITATIVE
    accessors = [Accessor(m) for m in wanted]
    first = plan_accessors(policy, accessors, mode=mode, ledger=(), now=NOW)
    written = first.policy or policy
    assert members(written, "roles/other") == members(policy, "roles/other")
    assert set(wanted) <= members(written, IAP_ACCESSOR_ROLE)
    if additive:
        assert members(policy, IAP_ACCESSOR_ROLE) <= members(written, IAP_ACCESSOR_ROLE)
    else:
        assert members(written, IAP_ACCESSOR_ROLE) == set(wanted)
    second = plan_accessors(written, accessors, mode=mode, ledger=first.ledger, now=NOW)
    assert second.policy is None


def test_additive_never_claims_a_member_someone_else_granted() -> None:
    """Declaring a member that already held the role, then undeclaring it, leaves it in place."""
    policy = {"bindings": [{"role": IAP_ACCESSOR_ROLE, "members": ["user:preexisting@example.com"]}]}
    declared = plan_accessors(
        policy,
        [Accessor("user:preexisting@example.com"), Accessor("user:new@example.com")],
        mode=AccessorsPolicy.ADDITIVE,
        ledger=(),
        now=NOW,
    )
    assert declared.ledger == ("user:new@example.com",)
    written = declared.policy or policy
    undeclared = plan_accessors(written, [], mode=AccessorsPolicy.ADDITIVE, ledger=declared.ledger, now=NOW)
    assert undeclared.policy is not None
    assert members(undeclared.policy, IAP_ACCESSOR_ROLE) == {"user:preexisting@example.com"}


def test_public_invoker_not_reported_when_iap_is_off_and_expiry_reported_once() -> None:
    policy = {"bindings": [{"role": RUN_INVOKER_ROLE, "members": ["allUsers"]}]}
    off = plan_invoker(policy, agent_member=AGENT, grant=False, remove_public=True, protect=False)
    assert off.public_members == ()
    assert off.policy is None
    gone = datetime(2026, 1, 1, tzinfo=UTC)
    again = plan_accessors(
        {}, [Accessor("user:temp@example.com", gone)], mode=AccessorsPolicy.AUTHORITATIVE, ledger=(), now=NOW
    )
    assert again.expired == ()


# --- conditional bindings are never widened ------------------------------------------------------------
#
# A grant is a (member, condition expression) pair of the accessor role ("" = unconditional). The
# invariants, for any observed policy, declared accessors and ledger:
#
# Additive
#   A1. every accessor binding whose condition the operator did not write (anything but an ``iaprun-expiry``
#       condition of the exact expiry shape) is in the written policy unchanged: same members, same condition;
#   A2. the grants added are exactly those of members in the resulting ledger, each under its declared expiry
#       (or none): so a member not in the ledger is never granted anything, and a member held only under a
#       foreign condition is never granted unconditionally (it cannot enter the ledger: it was held);
#   A3. the grants removed are only unconditional or operator-expiry grants of ledger members.
# Authoritative
#   B1. the written grants are exactly the live declared accessors under their declared expiry;
#   B2. every removed grant under a foreign condition is reported with its member, title and expression.
# Both: other roles untouched.

ACCESS_LEVEL = {
    "title": "corp-device",
    "expression": "'accessPolicies/1/accessLevels/corp' in request.auth.access_levels",
}
LATER = NOW + timedelta(hours=1)


def grants(policy: dict) -> set[tuple[str, str]]:
    return {
        (m, (b.get("condition") or {}).get("expression", ""))
        for b in policy.get("bindings", [])
        if b["role"] == IAP_ACCESSOR_ROLE
        for m in b["members"]
    }


def foreign_bindings(policy: dict) -> list[tuple[str, frozenset[str], str, str]]:
    out = []
    for b in policy.get("bindings", []):
        cond = b.get("condition")
        if b["role"] == IAP_ACCESSOR_ROLE and cond and cond.get("title") != EXPIRY_TITLE:
            out.append((b["role"], frozenset(b["members"]), cond["title"], cond["expression"]))
    return out


def expiry_condition(at: datetime) -> dict:
    return {
        "title": EXPIRY_TITLE,
        "description": "d",
        "expression": f'request.time < timestamp("{at:%Y-%m-%dT%H:%M:%SZ}")',
    }


_condition = st.sampled_from([None, ACCESS_LEVEL, expiry_condition(LATER), expiry_condition(NOW - timedelta(hours=1))])
_conditional_policy = st.lists(
    st.tuples(
        st.sampled_from([IAP_ACCESSOR_ROLE, IAP_ACCESSOR_ROLE, "roles/other"]),
        st.lists(_member, min_size=1, max_size=3, unique=True),
        _condition,
    ),
    max_size=5,
).map(
    lambda bs: {
        "etag": "E",
        "version": 3,
        "bindings": [{"role": r, "members": m, **({"condition": c} if c else {})} for r, m, c in bs],
    }
)
_declared = st.dictionaries(_member, st.sampled_from([None, LATER, NOW - timedelta(minutes=1)]), max_size=4)


def expression_for(expires: datetime | None) -> str:
    return "" if expires is None else expiry_condition(expires)["expression"]


@given(policy=_conditional_policy, declared=_declared, ledger=st.lists(_member, unique=True, max_size=3))
def test_additive_leaves_foreign_bindings_alone_and_widens_nobody(
    policy: dict, declared: dict[str, datetime | None], ledger: list[str]
) -> None:
    accessors = [Accessor(m, e) for m, e in declared.items()]
    plan = plan_accessors(policy, accessors, mode=AccessorsPolicy.ADDITIVE, ledger=ledger, now=NOW)
    written = plan.policy or policy
    # A1
    for binding in foreign_bindings(policy):
        assert binding in foreign_bindings(written)
    # A2
    live = {m: e for m, e in declared.items() if e is None or e > NOW}
    added = grants(written) - grants(policy)
    assert added <= {(m, expression_for(live[m])) for m in plan.ledger}
    assert set(plan.ledger) <= set(live)
    held_before = {m for m, _ in grants(policy)}
    assert all(m in ledger or m not in held_before for m in plan.ledger)
    for member, expression in added:
        if expression == "":
            assert live[member] is None
            assert member in plan.ledger
    # A3
    for member, expression in grants(policy) - grants(written):
        assert member in ledger
        assert expression == "" or expiry_of({"expression": expression}) is not None
    assert members(written, "roles/other") == members(policy, "roles/other")


@given(policy=_conditional_policy, declared=_declared)
def test_authoritative_owns_the_role_and_reports_each_foreign_condition_it_removes(
    policy: dict, declared: dict[str, datetime | None]
) -> None:
    accessors = [Accessor(m, e) for m, e in declared.items()]
    plan = plan_accessors(policy, accessors, mode=AccessorsPolicy.AUTHORITATIVE, ledger=(), now=NOW)
    written = plan.policy or policy
    live = {m: e for m, e in declared.items() if e is None or e > NOW}
    # B1
    assert grants(written) == {(m, expression_for(e)) for m, e in live.items()}
    # B2
    reported = {(m, b.title, b.expression) for b in plan.removed_foreign for m in b.members}
    for _, bound, title, expression in foreign_bindings(policy):
        for member in bound:
            if (member, expression) not in grants(written):
                assert (member, title, expression) in reported
    assert members(written, "roles/other") == members(policy, "roles/other")


def test_additive_does_not_take_a_declared_member_out_of_an_access_level_binding() -> None:
    """The issue's case: alice may pass IAP only from a corp device; declaring her must not drop that."""
    policy = {
        "version": 3,
        "bindings": [{"role": IAP_ACCESSOR_ROLE, "members": ["user:alice@example.com"], "condition": ACCESS_LEVEL}],
    }
    plan = plan_accessors(
        policy,
        [Accessor("user:alice@example.com"), Accessor("user:bob@example.com")],
        mode=AccessorsPolicy.ADDITIVE,
        ledger=(),
        now=NOW,
    )
    assert plan.policy is not None
    assert grants(plan.policy) == {
        ("user:alice@example.com", ACCESS_LEVEL["expression"]),
        ("user:bob@example.com", ""),
    }
    assert plan.kept_conditional == ("user:alice@example.com",)
    assert plan.ledger == ("user:bob@example.com",)


def test_authoritative_reports_the_condition_it_removes() -> None:
    policy = {
        "version": 3,
        "bindings": [
            {
                "role": IAP_ACCESSOR_ROLE,
                "members": ["user:alice@example.com", "user:eve@example.com"],
                "condition": ACCESS_LEVEL,
            }
        ],
    }
    plan = plan_accessors(
        policy, [Accessor("user:alice@example.com")], mode=AccessorsPolicy.AUTHORITATIVE, ledger=(), now=NOW
    )
    assert plan.policy is not None
    (removed,) = plan.removed_foreign
    assert removed.members == ("user:alice@example.com", "user:eve@example.com")
    assert (removed.title, removed.expression) == (ACCESS_LEVEL["title"], ACCESS_LEVEL["expression"])
    assert "corp-device" in removed.describe()
    assert "user:eve@example.com" in removed.describe()
