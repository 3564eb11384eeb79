"""No log line carries a spec value: kopf's bodies, diffs and patches, and Google request payloads, are cut.

The lines are kopf 1.45's own (processing.py, patching.py) and google-api-core's structured request log; the
end-to-end proof (the operator at --verbose on a real object) is ``tests/integration/test_robustness.py``.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from iaprun_operator.logs import REDACTED, SpecValueRedactor

SECRET = "s3cr3t-literal-value"
BODY = {"spec": {"template": {"containers": [{"env": [{"name": "TOKEN", "value": SECRET}]}]}}}


@pytest.mark.parametrize(
    "line",
    [
        f"Creation is in progress: {BODY!r}",
        f"Update diff: (('change', ('spec', 'x'), 'old', {SECRET!r}),)",
        f"Merge-patching the resource with: {BODY!r}",
        f"Merge-patching the status with: {{'status': {SECRET!r}}}",
        f"JSON-patching the resource with: [{{'op': 'add', 'value': {SECRET!r}}}]",
        f"Could not apply the patch in full. Will try on the next cycle soon. Remaining: {BODY!r}",
        f"Merge-patching finished with inconsistencies: {BODY!r}",
    ],
)
def test_kopf_lines_with_bodies_keep_their_head_and_lose_their_values(line: str) -> None:
    record = logging.LogRecord("kopf.objects", logging.DEBUG, __file__, 1, line, None, None)
    assert SpecValueRedactor().filter(record)
    assert SECRET not in record.getMessage()
    assert REDACTED in record.getMessage()


def test_google_request_payload_extra_is_cut_and_the_rest_kept() -> None:
    logger = logging.getLogger("test.redaction.google")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(httpRequest)s"))
    handler.addFilter(SpecValueRedactor())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug(
            "Sending request for google.cloud.run_v2.ServicesClient.UpdateService",
            extra={"httpRequest": {"method": "PATCH", "payload": json.dumps(BODY)}},
        )
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue()
    assert "PATCH" in stream.getvalue()


def test_an_ordinary_line_is_untouched() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler %r succeeded.", ("x",), None)
    assert SpecValueRedactor().filter(record)
    assert record.getMessage() == "Handler 'x' succeeded."
