"""deployments/names.py: supervisord's events become lines named after their process."""

from __future__ import annotations

import io

from deployments.names import Namer, serve


def log_event(name: str, data: str, channel: str = "stdout") -> str:
    return f"processname:{name} groupname:{name} pid:7 channel:{channel}\n{data}"


def test_each_complete_line_is_named_and_a_partial_line_waits_for_its_end():
    out = io.StringIO()
    namer = Namer(out)
    namer.handle("PROCESS_LOG_STDOUT", log_event("relay", "one\ntw"))
    namer.handle("PROCESS_LOG_STDERR", log_event("ack", "other\n", "stderr"))
    namer.handle("PROCESS_LOG_STDOUT", log_event("relay", "o\n"))
    assert out.getvalue().splitlines() == [
        "relay       | one", "ack         | other", "relay       | two"]


def test_a_stopped_process_flushes_its_partial_line_and_its_state_is_named():
    out = io.StringIO()
    namer = Namer(out)
    namer.handle("PROCESS_LOG_STDOUT", log_event("deployments", "no newline"))
    namer.handle("PROCESS_STATE_EXITED",
                 "processname:deployments groupname:deployments from_state:RUNNING "
                 "expected:0 pid:42")
    assert out.getvalue().splitlines() == [
        "deployments | no newline", "deployments | -- exited (pid 42); restarting"]


def test_the_listener_protocol_counts_the_payload_in_characters():
    payload = log_event("prefect", "│ box ─ drawing │\nnext\n")
    header = f"ver:3.0 server:supervisor serial:1 pool:names poolserial:1 " \
             f"eventname:PROCESS_LOG_STDOUT len:{len(payload)}\n"
    stdin = io.StringIO(header + payload + header.replace("serial:1", "serial:2")
                        + payload)
    stdout, out = io.BytesIO(), io.StringIO()
    serve(stdin, stdout, out)
    assert out.getvalue().splitlines() == ["prefect     | │ box ─ drawing │",
                                           "prefect     | next"] * 2
    assert stdout.getvalue() == b"READY\nRESULT 2\nOK" * 2 + b"READY\n"
