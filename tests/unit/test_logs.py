"""One log format for every process (common/logs.py): text or JSON, secrets masked."""

from __future__ import annotations

import io
import json
import logging

from common import logs
from common.settings import Settings


def configured(log_format: str, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    logs.configure("assignment", Settings(LOG_FORMAT=log_format, LOG_LEVEL=level), stream)
    return stream


def test_text_lines_name_the_process_and_the_logger():
    stream = configured("text")
    logging.getLogger("common.services.assignment").info("assigned %d event(s)", 3)
    line = stream.getvalue().strip()
    assert " INFO assignment common.services.assignment: assigned 3 event(s)" in line


def test_json_lines_carry_the_same_fields_and_the_exception():
    stream = configured("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("consumers.runner").exception("batch failed for event %s", "e-1")
    entry = json.loads(stream.getvalue())
    assert entry["process"] == "assignment" and entry["level"] == "ERROR"
    assert entry["logger"] == "consumers.runner"
    assert entry["message"] == "batch failed for event e-1"
    assert "ValueError: boom" in entry["exception"]


def test_debug_lines_show_only_at_debug():
    stream = configured("text", "INFO")
    logging.getLogger("common.services.relay").debug("event x relayed")
    assert stream.getvalue() == ""
    stream = configured("text", "DEBUG")
    logging.getLogger("common.services.relay").debug("event x relayed")
    assert "event x relayed" in stream.getvalue()


def test_configuring_twice_never_prints_a_line_twice():
    configured("text")
    stream = configured("text")
    logging.getLogger("x").warning("once")
    assert stream.getvalue().count("once") == 1


def test_tokens_and_passwords_are_masked_whatever_a_line_says():
    stream = configured("text")
    log = logging.getLogger("leaky")
    log.warning("headers %s", {"Authorization": "Bearer abc.def-123"})
    log.warning('body {"username": "john.smith", "password": "pass123"}')
    log.warning("url ?token=s3cr3t&x=1")
    text = stream.getvalue()
    assert "abc.def-123" not in text and "pass123" not in text and "s3cr3t" not in text
    assert "john.smith" in text and text.count("***") == 3


def teardown_module():
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "ours", False)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
