"""The console's only way to the system: the HTTP API at settings.API_URL, over httpx.

Every failure becomes an ApiError whose `message` is a sentence for the person at the
console; SessionEnded (a 401 on an authenticated call) sends them back to the login form.
The pages call these functions and show `message`; nothing here knows about Streamlit.
"""

from __future__ import annotations

import httpx

TIMEOUT_SECONDS = 10.0
JSON = "application/json"
# GET answers kept for If-None-Match, one per path (the last parameters asked): enough for
# the panels that poll, and bounded however many paths a long session reads.
KEPT_ANSWERS = 64


class ApiError(Exception):
    """A request that did not succeed; `message` says what happened, for people."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class SessionEnded(ApiError):
    """401 on an authenticated call: the session expired, ended, or was never valid."""


class ApiClient:
    """Calls to the API for one console session (`token` None before login), over one
    httpx.Client that keeps its connections open. Every call names the browser's address
    (X-Forwarded-For) and carries the console's secret (X-Console-Secret).

    A JSON GET answered with an ETag is kept; the next GET of the same path and parameters
    sends If-None-Match, and a 304 returns the kept data (`not_modified` counts them)."""

    def __init__(self, base_url: str, token: str | None = None, secret: str = "",
                 browser_ip: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"X-Console-Secret": secret} if secret else {}
        if browser_ip:
            headers["X-Forwarded-For"] = browser_ip
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=TIMEOUT_SECONDS)
        self._kept: dict[str, tuple[dict | None, str, object]] = {}
        self.not_modified = 0

    def close(self) -> None:
        self._http.close()

    def login(self, username: str, password: str) -> dict:
        """{token, user}; a wrong username or password is an ApiError, not SessionEnded."""
        return self._call("POST", "/auth/login",
                          json={"username": username, "password": password})

    def logout(self) -> None:
        self._call("POST", "/auth/logout")

    def heartbeat(self) -> dict:
        """Refresh the session; returns the user with their current availability."""
        return self._call("POST", "/auth/heartbeat")["user"]

    def availability(self, user_id: int) -> bool:
        """Whether the user is available for new work, as the API holds it now."""
        return self._call("GET", f"/users/{user_id}/active")["available"]

    def assignments(self, user_id: int) -> list[dict]:
        return self._call("GET", f"/users/{user_id}/assignments")

    def decide(self, assignment_id: int, status: str, reason: str | None = None,
               note: str | None = None) -> dict:
        body = {"status": status}
        if reason:
            body["reason"] = reason
        if note:
            body["note"] = note
        return self._call("PUT", f"/assignments/{assignment_id}", json=body)

    def release(self, assignment_id: int) -> dict:
        return self._call("POST", f"/assignments/{assignment_id}/release")

    def move(self, assignment_id: int, user_id: int) -> dict:
        return self._call("POST", f"/assignments/{assignment_id}/move",
                          json={"user_id": user_id})

    def metrics(self, region: str, start: str | None = None, end: str | None = None) -> dict:
        return self._call("GET", f"/regions/{region}/metrics",
                          params=_drop_none({"from": start, "to": end}))

    def history(self, region: str, start: str | None = None, end: str | None = None,
                user_id: int | None = None, limit: int = 200) -> dict:
        return self._call("GET", f"/regions/{region}/history", params=_drop_none(
            {"from": start, "to": end, "user_id": user_id, "limit": limit}))

    def history_csv(self, region: str, start: str | None = None, end: str | None = None,
                    user_id: int | None = None) -> str:
        return self._call("GET", f"/regions/{region}/history", params=_drop_none(
            {"from": start, "to": end, "user_id": user_id}), accept="text/csv")

    def event_history(self, event_id: str) -> list[dict]:
        return self._call("GET", f"/events/{event_id}/history")

    def set_available(self, user_id: int, available: bool) -> dict:
        return self._call("POST" if available else "DELETE", f"/users/{user_id}/active")

    def overview(self, region: str) -> dict:
        return self._call("GET", f"/regions/{region}/overview")

    def now(self, region: str) -> dict:
        """The region this moment, with the queue and dead-letter depths."""
        return self._call("GET", f"/regions/{region}/now")

    def _call(self, method: str, path: str, json: dict | None = None,
              params: dict | None = None, accept: str = JSON):
        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        cacheable = method == "GET" and accept == JSON
        kept = self._kept.get(path) if cacheable else None
        if kept is not None and kept[0] == params:
            headers["If-None-Match"] = kept[1]
        try:
            answer = self._http.request(method, path, json=json, params=params,
                                        headers=headers)
        except httpx.HTTPError as error:
            raise ApiError(f"The API at {self.base_url} is not answering ({_reason(error)}). "
                           "Is it running?") from None
        if answer.status_code == 304 and "If-None-Match" in headers:
            self.not_modified += 1
            return kept[2]
        if answer.is_success and accept != JSON:
            return answer.text
        if answer.is_success:
            data = answer.json() if answer.content else None
            if cacheable and answer.headers.get("etag"):
                self._keep(path, params, answer.headers["etag"], data)
            return data
        raise error_for(answer.status_code, _body(answer), authenticated=bool(self.token))

    def _keep(self, path: str, params: dict | None, tag: str, data) -> None:
        self._kept.pop(path, None)
        self._kept[path] = (params, tag, data)
        if len(self._kept) > KEPT_ANSWERS:
            self._kept.pop(next(iter(self._kept)))


def error_for(status: int, body: dict, authenticated: bool = True) -> ApiError:
    """The ApiError for an API answer with this status and JSON body."""
    detail = _detail_text(body.get("detail"))
    if status == 401 and authenticated:
        return SessionEnded("Your session has ended. Please log in again.", status)
    if status == 401:
        return ApiError("Wrong username or password.", status)
    if status == 409 and ("decided" in detail or "released" in detail or "live" in detail):
        return ApiError(f"Already decided or released: {detail}", status)
    if status == 409:
        return ApiError(f"Not possible now: {detail}.", status)
    if status == 503:
        server = body.get("server") or "A server"
        return ApiError(f"{server} is down, so the API cannot do this now ({detail}). "
                        "Please try again in a moment.", status)
    if status in (403, 404, 429):
        return ApiError(f"{detail[:1].upper()}{detail[1:]}.", status)
    if status == 422:
        return ApiError(f"The API refused the request as invalid: {detail}", status)
    return ApiError(f"The API failed (HTTP {status}): {detail}", status)


def _drop_none(params: dict) -> dict:
    return {k: v for k, v in params.items() if v is not None}


def _body(answer: httpx.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {"detail": answer.text[:200] or answer.reason_phrase}
    return body if isinstance(body, dict) else {"detail": str(body)}


def _detail_text(detail) -> str:
    """FastAPI's detail is a string, or a list of validation errors."""
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                         for item in detail)
    return str(detail or "no detail")


def _reason(error: httpx.HTTPError) -> str:
    return str(error) or type(error).__name__
