"""One log format for every process: time, level, process name, logger, message.

`configure(process, settings)` is called once at the start of each entry point
(`python -m consumers NAME`, the API's app, `deployments.serve`, the console).
`LOG_FORMAT=text` (default) writes `2026-11-30 03:50:01,123 INFO assignment
common.services.assignment: ...`; `LOG_FORMAT=json` writes one JSON object per line for log
shippers, with the same fields. `LOG_LEVEL=DEBUG` adds a line per event at every step of its
journey (relayed, stored, waiting, assigned, decided, Viewed, finished), each naming the
event and, once it has one, the assignment, so `grep <event_id>` follows one event.

A filter masks anything that looks like a bearer token or a password field, as a last line
of defence: no line is meant to carry one in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from common.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s {process} %(name)s: %(message)s"
# Libraries that narrate every step at INFO; their warnings and errors still show.
CHATTY = ("pika", "httpx", "httpcore", "urllib3")
# Loggers that bring their own handlers (uvicorn's); ours replace them.
ADOPTED = ("uvicorn", "uvicorn.error", "uvicorn.access")
_SECRET = re.compile(
    r"(?i)(bearer\s+|(?:password|passwd|token)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}&]+)")


def redact(text: str) -> str:
    """`text` with bearer tokens and `password=`/`token:` values replaced by `***`."""
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the rendered message (see `redact`). Installed on every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, process, logger, message,
    and the exception text when there is one."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each line (a test's capture ends and
    closes its file; a handler holding that file would fail on the next line)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def formatter(process: str, log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(process)
    return logging.Formatter(TEXT_FORMAT.format(process=process))


def configure(process: str, settings: Settings, stream=None) -> None:
    """Send every logger's lines to `stream` (default stderr) in the chosen format and level.

    Safe to call twice: our handler (and any other writing to stderr or stdout) is
    replaced, not added to, so no line is ever printed twice; other handlers (a test's
    capture) stay.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter(process, settings.LOG_FORMAT))
    handler.addFilter(RedactingFilter())
    handler.ours = True
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "ours", False) or isinstance(old, logging.StreamHandler) and \
                old.stream in (sys.stderr, sys.stdout):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.LOG_LEVEL)
    for name in ADOPTED:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
