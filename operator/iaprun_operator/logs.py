"""Log hygiene: kopf logs routine events as if they were news.

Every timer tick of every object logs "Timer 'drift' succeeded." (1,000 objects at a 10 s tick: 100 lines
a second), and every "come back later" while Cloud Run rolls out logs "failed temporarily" at ERROR.
The first is dropped, the second kept at INFO; ``--verbose`` shows everything.
"""

from __future__ import annotations

import logging


class RoutineFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Timer 'drift' succeeded"):
            return False
        if "failed temporarily" in message and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_routine_logs() -> None:
    for name in ("kopf.objects", "kopf"):
        logging.getLogger(name).addFilter(RoutineFilter())
