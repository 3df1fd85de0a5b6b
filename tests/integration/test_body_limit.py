"""Bodies over API_MAX_BODY_BYTES are refused with 413 before the app reads them."""

from __future__ import annotations

import socket
import tempfile
from urllib.parse import urlparse

from fastapi.testclient import TestClient

from common.api.app import create_app
from tests.processes import serving_api


def _chunks(count: int, size: int):
    for _ in range(count):
        yield b" " * size


def test_a_declared_or_streamed_body_over_the_limit_is_413_and_a_small_one_passes(settings):
    settings = settings.model_copy(update={"API_MAX_BODY_BYTES": 4096})
    with TestClient(create_app(settings)) as client:
        declared = client.post("/auth/login", content=b" " * 5000,
                               headers={"Content-Type": "application/json"})
        streamed = client.post("/auth/login", content=_chunks(10, 1000),
                               headers={"Content-Type": "application/json"})
        small = client.post("/auth/login", content=_chunks(1, 60),
                            headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json() == {"detail": "request body larger than 4096 bytes"}
    assert small.status_code == 422  # read and validated: the limit let it through


def test_the_running_api_refuses_a_multi_gigabyte_body_without_reading_it(settings):
    with tempfile.TemporaryFile() as logs, serving_api(settings, logs) as url:
        address = urlparse(url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: api\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 5000000000\r\n\r\n{\"username\": ")
            answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
