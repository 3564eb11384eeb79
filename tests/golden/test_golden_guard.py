"""The golden comparison itself: it fails on any request added, removed or changed, and only on those.

The create scenario is run for real; its recorded requests are then perturbed one way at a time before
rendering, and the result is compared with the committed log. Masking is checked to hide only values that
differ from run to run (an etag with another value renders the same), while keeping which are equal.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace

import pytest

from golden import golden
from golden.record import Masker, Request, Section, render
from golden.scenarios import create
from golden.world import World

Perturb = Callable[[list[Section]], None]


def _requests(sections: list[Section]) -> list[Request]:
    return [r for s in sections for r in s.requests]


def _first(sections: list[Section], method: str) -> tuple[Section, int]:
    for section in sections:
        for index, request in enumerate(section.requests):
            if request.method == method:
                return section, index
    raise AssertionError(f"no {method} in the scenario")


def _remove(method: str) -> Perturb:
    def perturb(sections: list[Section]) -> None:
        section, index = _first(sections, method)
        del section.requests[index]

    return perturb


def _duplicate(method: str) -> Perturb:
    def perturb(sections: list[Section]) -> None:
        section, index = _first(sections, method)
        section.requests.insert(index, section.requests[index])

    return perturb


def _change(method: str, **changes: object) -> Perturb:
    def perturb(sections: list[Section]) -> None:
        section, index = _first(sections, method)
        section.requests[index] = replace(section.requests[index], **changes)  # type: ignore[arg-type]

    return perturb


def _create_body(sections: list[Section]) -> dict[str, object]:
    section, index = _first(sections, "run.services.create")
    return dict(section.requests[index].body)


PERTURBATIONS: dict[str, Perturb] = {
    "a request removed (the agent's invoker grant)": _remove("run.services.setIamPolicy"),
    "a request added (a second IAP getIamPolicy)": _duplicate("iap.getIamPolicy"),
    "a body changed (created with IAP off)": lambda s: _change(
        "run.services.create", body={**_create_body(s), "iapEnabled": False}
    )(s),
    "a query changed (another updateMask or service id)": _change(
        "run.services.create", query={"serviceId": "other", "$alt": "json;enum-encoding=int"}
    ),
    "a path changed (another project)": _change(
        "run.services.get", path="/v2/projects/other-project/locations/asia-northeast1/services/hello"
    ),
    "a method changed (PUT for POST)": _change("run.services.create", http="PUT"),
}


@pytest.fixture
async def created(world: World) -> World:
    if golden.updating():
        pytest.skip("the committed logs are being rewritten")
    await create(world)
    return world


def _rendered(world: World) -> str:
    return world.render("create", inspect.getdoc(create) or "")


async def test_the_unperturbed_run_matches(created: World) -> None:
    assert golden.difference(golden.path_of("create").read_text(), _rendered(created), name="create.log") == ""


@pytest.mark.parametrize("what", sorted(PERTURBATIONS))
async def test_a_perturbed_request_fails_with_a_diff(created: World, what: str) -> None:
    PERTURBATIONS[what](created.sections)
    problem = golden.check("create", _rendered(created))
    assert "what the operator sends to Google changed" in problem
    assert "\n-" in problem or "\n+" in problem, problem


async def test_volatile_values_with_other_values_render_the_same(created: World) -> None:
    """An etag is never the same twice; a log that differed by it would fail every run."""
    for section in created.sections:
        section.requests[:] = [_other_etag(r) for r in section.requests]
    assert golden.check("create", _rendered(created)) == ""


def _other_etag(request: Request) -> Request:
    body = request.body
    if isinstance(body, dict) and isinstance(body.get("policy"), dict) and "etag" in body["policy"]:
        return replace(request, body={**body, "policy": {**body["policy"], "etag": "BwZZZZZZ"}})
    return request


def test_masking_numbers_distinct_values_and_keeps_equal_ones_equal() -> None:
    mask = Masker()
    assert mask.json({"etag": "BwA1", "x": [{"etag": "BwA2"}, {"etag": "BwA1"}]}) == {
        "etag": "<etag-1>",
        "x": [{"etag": "<etag-2>"}, {"etag": "<etag-1>"}],
    }
    assert mask.json({"updateTime": "2026-06-01T00:00:01.5Z"}) == {"updateTime": "<time-1>"}
    assert mask.text("Revision 'hello-00001-x7k' failed") == "Revision '<revision-1>' failed"
    assert mask.text("operations/0b7e1c1e-4a3f-4c52-9d1e-2f3a4b5c6d7e") == "operations/<uuid-1>"


def test_a_fixed_timestamp_in_an_iam_condition_is_not_masked() -> None:
    """Expiry times come from the spec: they are what the operator decides, so they stay in the log."""
    condition = {"expression": 'request.time < timestamp("2026-06-01T01:00:00Z")'}
    assert Masker().json({"condition": condition}) == {"condition": condition}


def test_render_shows_each_request_once_with_its_body_and_answer() -> None:
    request = Request(
        "POST", "/v1/x:setIamPolicy", {"alt": "json"}, {"policy": {"etag": "E"}}, "iap.setIamPolicy", 409, "ABORTED"
    )
    text = render("s", "Doc.", [Section("reconcile", [request], "retry")])
    assert "POST /v1/x:setIamPolicy?alt=json  (iap.setIamPolicy) -> 409 ABORTED" in text
    assert '"etag": "<etag-1>"' in text
    assert "=> retry" in text
