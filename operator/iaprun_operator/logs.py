"""Log hygiene: no spec value in any log line, and kopf's routine events not logged as if they were news.

Spec values: at ``--verbose`` kopf logs whole bodies ("Creation is in progress: {...}"), diffs and the
patches it sends, and the Google clients log request payloads (in the record's ``httpRequest`` extra, which
the JSON format prints). A spec may hold a secret pasted as a literal env value, and operator logs travel
further than the objects (log pipelines, support bundles). ``SpecValueRedactor`` sits on the root logger's
handlers, so it sees every record of every logger whatever the level, and cuts those parts out.

Routine events: every "come back later" while Cloud Run rolls out logs "failed temporarily" at ERROR; it is
kept at INFO (``--verbose`` shows everything).
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted: may hold spec values>"
# kopf's lines whose tail is a body, an essence diff or a patch (kopf 1.45: processing.py, patching.py).
_WITH_VALUES = re.compile(
    r"(is in progress|diff|patching the (?:resource|status) with|inconsistencies|Remaining|unsupported event type)"
    r": .*",
    re.DOTALL,
)
_PAYLOAD_EXTRAS = ("httpRequest", "httpResponse")


class SpecValueRedactor(logging.Filter):
    """Cuts bodies, diffs, patches and request payloads out of every record (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _WITH_VALUES.sub(lambda m: f"{m.group(1)}: {REDACTED}", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        for name in _PAYLOAD_EXTRAS:
            extra = getattr(record, name, None)
            if isinstance(extra, dict) and "payload" in extra:
                setattr(record, name, {**extra, "payload": REDACTED})
        return True


def redact_spec_values() -> None:
    """Put the redactor on every handler of the root logger (call after ``kopf.configure``)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(SpecValueRedactor())


class RoutineFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO and "failed temporarily" in record.getMessage():
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_routine_logs() -> None:
    for name in ("kopf.objects", "kopf"):
        logging.getLogger(name).addFilter(RoutineFilter())
