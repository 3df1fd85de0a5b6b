"""`python -m deployments.names`: supervisord's event listener that names every output line.

supervisord (deployments/supervisord.conf) sends each chunk a program writes as a
PROCESS_LOG event, and each change of a program's state as a PROCESS_STATE event. This
listener prints every complete line as `process | line` on its standard error, which the
config sends to supervisord's standard output: the terminal of `make up`. A partial line
waits for its end, or for its program to stop. Standard output is the event protocol.
"""

from __future__ import annotations

import io
import sys
from typing import BinaryIO, TextIO

WIDTH = 12  # the longest program name, `deployments`, and a space
# A partial line longer than this is printed as it is rather than held.
MAX_PARTIAL = 16_384
# PROCESS_STATE events worth a line, and how to say them.
STATES = {
    "PROCESS_STATE_STARTING": "starting",
    "PROCESS_STATE_RUNNING": "running",
    "PROCESS_STATE_BACKOFF": "exited too quickly; next try after a back-off",
    "PROCESS_STATE_STOPPING": "stopping",
    "PROCESS_STATE_STOPPED": "stopped",
    "PROCESS_STATE_EXITED": "exited",
    "PROCESS_STATE_FATAL": "gave up restarting",
}


def parse_tokens(line: str) -> dict[str, str]:
    """`a:1 b:2` → {'a': '1', 'b': '2'} (the shape of supervisord's headers)."""
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


class Namer:
    """Turns events into named lines; holds the partial line of each program and channel."""

    def __init__(self, out: TextIO):
        self.out = out
        self.partial: dict[tuple[str, str], str] = {}

    def handle(self, event: str, payload: str) -> None:
        if event.startswith("PROCESS_LOG"):
            head, _, data = payload.partition("\n")
            fields = parse_tokens(head)
            self.output(fields.get("processname", "?"), fields.get("channel", "?"), data)
        elif event in STATES:
            fields = parse_tokens(payload.partition("\n")[0])
            name = fields.get("processname", "?")
            self.flush(name)
            self.say(name, self.describe(event, fields))
        self.out.flush()

    def output(self, name: str, channel: str, data: str) -> None:
        text = self.partial.pop((name, channel), "") + data
        *lines, rest = text.split("\n")
        for line in lines:
            self.say(name, line)
        if len(rest) > MAX_PARTIAL:
            self.say(name, rest)
        elif rest:
            self.partial[(name, channel)] = rest

    def flush(self, name: str) -> None:
        for key in [key for key in self.partial if key[0] == name]:
            self.say(name, self.partial.pop(key))

    def say(self, name: str, line: str) -> None:
        self.out.write(f"{name:<{WIDTH}}| {line.rstrip(chr(13))}\n")

    @staticmethod
    def describe(event: str, fields: dict[str, str]) -> str:
        text = f"-- {STATES[event]}"
        if event == "PROCESS_STATE_EXITED":
            # Every program has autorestart=true; a stop goes through STOPPING instead.
            text += f" (pid {fields.get('pid', '?')}); restarting"
        return text


def serve(stdin: TextIO, stdout: BinaryIO, out: TextIO) -> None:
    """The listener protocol: READY, read one header and payload, RESULT, until EOF.

    supervisord 4.3 gives the payload's length in characters, not bytes, so the payload is
    read from a text stream.
    """
    namer = Namer(out)
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return
        fields = parse_tokens(header)
        payload = stdin.read(int(fields.get("len", "0")))
        try:
            namer.handle(fields.get("eventname", ""), payload)
        except Exception as error:  # a line lost is better than a listener restarting
            out.write(f"{'names':<{WIDTH}}| could not print an event: {error!r}\n")
        stdout.write(b"RESULT 2\nOK")
        stdout.flush()


def main() -> int:
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    serve(stdin, sys.stdout.buffer, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
