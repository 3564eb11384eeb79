"""Google's errors become the project's own kinds (core.errors.Kind), the same way from both client families.

The loop decides from the kind alone (stall or retry), so a wrong mapping is a stuck object or a retry storm.
Errors are built as the clients build them from Google's JSON envelope: ``google.api_core`` exceptions (Cloud
Run over REST) from a ``requests.Response``, ``HttpError`` (discovery clients: IAP, Service Usage, Resource
Manager) from an ``httplib2.Response``; a failed long-running operation from its ``google.longrunning``
protobuf. No mocks: real response objects with Google's bodies.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import httplib2
import pytest
import requests
from google.api_core import exceptions as core_exceptions
from google.longrunning import operations_pb2
from google.rpc import status_pb2
from googleapiclient.errors import HttpError

from iaprun_operator.core.errors import Kind
from iaprun_operator.google.calls import kind_for, to_google_error
from iaprun_operator.google.cloudrun import operation_error

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
HTML_NOTE = "with an HTML page instead of an API error (no such location or path)"
# (HTTP code, google.rpc status, ErrorInfo reason) -> kind, as Google answers them.
ANSWERS = [
    (409, "ABORTED", "", Kind.CONFLICT),
    (409, "ALREADY_EXISTS", "", Kind.ALREADY_EXISTS),
    (400, "FAILED_PRECONDITION", "", Kind.FAILED_PRECONDITION),
    (400, "INVALID_ARGUMENT", "", Kind.INVALID),
    (400, "OUT_OF_RANGE", "", Kind.INVALID),
    (404, "NOT_FOUND", "", Kind.NOT_FOUND),
    (403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", Kind.PERMISSION),
    (401, "UNAUTHENTICATED", "", Kind.PERMISSION),
    (429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED", Kind.RATE_LIMITED),
    (403, "PERMISSION_DENIED", "RATE_LIMIT_EXCEEDED", Kind.RATE_LIMITED),  # a quota error can come as 403
    (503, "UNAVAILABLE", "", Kind.TRANSIENT),
    (500, "INTERNAL", "", Kind.TRANSIENT),
    (504, "DEADLINE_EXCEEDED", "", Kind.TRANSIENT),
    (500, "UNKNOWN", "", Kind.TRANSIENT),
]


def envelope(code: int, status: str, reason: str, message: str = "Google says no.") -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com"}]
    return json.dumps({"error": error}).encode()


def rest_error(code: int, body: bytes, headers: dict[str, str] | None = None) -> Exception:
    """What the Cloud Run REST transport raises: api_core's exception made from the HTTP response."""
    response = requests.Response()
    response.status_code = code
    response._content = body
    response.headers.update(headers or {})
    response.request = requests.Request("GET", "https://run.googleapis.com/v2/x").prepare()
    exc: Exception = core_exceptions.from_http_response(response)
    return exc


def discovery_error(code: int, body: bytes, headers: dict[str, str] | None = None) -> Exception:
    """What a discovery client raises: HttpError with httplib2's response."""
    response = httplib2.Response({"status": str(code), **(headers or {})})
    response.reason = http.client.responses.get(code, "")
    return HttpError(response, body, uri="https://iap.googleapis.com/v1/x")


FAMILIES = {"rest": rest_error, "discovery": discovery_error}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(("code", "status", "reason", "kind"), ANSWERS)
def test_google_answers_map_to_kinds(family: str, code: int, status: str, reason: str, kind: Kind) -> None:
    error = to_google_error(FAMILIES[family](code, envelope(code, status, reason)), api="run", method="m")
    assert error is not None
    assert (error.kind, error.code, error.message) == (kind, code, "Google says no.")
    assert error.reason == reason


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, Kind.INVALID),
        (401, Kind.PERMISSION),
        (403, Kind.PERMISSION),
        (404, Kind.NOT_FOUND),
        (409, Kind.CONFLICT),
        (412, Kind.CONFLICT),
        (429, Kind.RATE_LIMITED),
        (408, Kind.TRANSIENT),
        (500, Kind.TRANSIENT),
        (502, Kind.TRANSIENT),
        (503, Kind.TRANSIENT),
        (599, Kind.TRANSIENT),
        (418, Kind.TRANSIENT),
    ],
)
def test_without_a_status_the_http_code_decides(code: int, kind: Kind) -> None:
    assert kind_for(code, "", "") is kind


def test_the_status_beats_the_http_code_and_a_rate_reason_beats_both() -> None:
    assert kind_for(400, "FAILED_PRECONDITION", "") is Kind.FAILED_PRECONDITION
    assert kind_for(403, "PERMISSION_DENIED", "userRateLimitExceeded") is Kind.RATE_LIMITED
    assert kind_for(200, "", "quotaExceeded") is Kind.RATE_LIMITED


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_retry_after_is_kept(family: str) -> None:
    raised = FAMILIES[family](429, envelope(429, "RESOURCE_EXHAUSTED", ""), {"Retry-After": "7"})
    error = to_google_error(raised, api="run", method="m")
    assert error is not None
    assert error.retry_after == 7.0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_html_page_from_the_front_end_is_not_passed_on(family: str) -> None:
    """Google's front end answers an unknown region with an HTML page; conditions get one readable line."""
    page = b"<!DOCTYPE html><html><body>404. That's an error.</body></html>"
    error = to_google_error(FAMILIES[family](404, page), api="run", method="m")
    assert error is not None
    assert error.kind is Kind.NOT_FOUND
    # api_core puts the page into its message (replaced by a sentence); HttpError has HTTP's reason phrase.
    expected = {"rest": f"HTTP 404 from Google's front end, {HTML_NOTE}", "discovery": "Not Found"}
    assert error.message == expected[family]


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError("refused"),
        TimeoutError("timed out"),
        ConnectionResetError("reset"),
        core_exceptions.RetryError("deadline", cause=None),
    ],
)
def test_connection_failures_are_transient(exc: BaseException) -> None:
    error = to_google_error(exc, api="iap", method="getIamPolicy")
    assert error is not None
    assert error.kind is Kind.TRANSIENT


def test_a_bug_is_not_mistaken_for_an_answer() -> None:
    assert to_google_error(KeyError("policy"), api="iap", method="getIamPolicy") is None


def failed_operation(code: int, message: str = "Revision failed.") -> operations_pb2.Operation:
    return operations_pb2.Operation(name="operations/x", done=True, error=status_pb2.Status(code=code, message=message))


@pytest.mark.parametrize(
    ("code", "kind", "http"),
    [
        (3, Kind.INVALID, 400),
        (5, Kind.NOT_FOUND, 404),
        (6, Kind.ALREADY_EXISTS, 409),
        (7, Kind.PERMISSION, 403),
        (8, Kind.RATE_LIMITED, 429),
        (9, Kind.FAILED_PRECONDITION, 400),
        (10, Kind.CONFLICT, 409),
        (11, Kind.INVALID, 400),
        (13, Kind.TRANSIENT, 500),
        (14, Kind.TRANSIENT, 503),
        (4, Kind.TRANSIENT, 504),
        (2, Kind.TRANSIENT, 500),
        (16, Kind.PERMISSION, 401),
    ],
)
def test_a_failed_operation_maps_like_a_call_with_its_status(code: int, kind: Kind, http: int) -> None:
    error = operation_error(failed_operation(code), "services.create")
    assert error is not None
    assert (error.kind, error.code, error.message, error.method) == (kind, http, "Revision failed.", "services.create")


def test_an_operation_in_flight_or_succeeded_is_no_error() -> None:
    assert operation_error(operations_pb2.Operation(name="operations/x", done=False), "services.create") is None
    assert operation_error(operations_pb2.Operation(name="operations/x", done=True), "services.create") is None
