"""A 405 names every method of its path, also for routers included with a prefix."""

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from common.api import method_not_allowed


def test_allow_names_every_method_of_the_path():
    router = APIRouter()
    router.add_api_route("/things/{x}", lambda x: x, methods=["POST"])
    router.add_api_route("/things/{x}", lambda x: x, methods=["DELETE"])
    app = FastAPI()
    app.include_router(router)
    app.include_router(router, prefix="/v2")
    method_not_allowed.install(app)
    client = TestClient(app)
    for path in ("/things/1", "/v2/things/1"):
        answer = client.get(path)
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "POST, DELETE"
        assert answer.json() == {"detail": "Method Not Allowed"}
