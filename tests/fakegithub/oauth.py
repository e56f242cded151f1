"""GitHub's OAuth web flow (``/login/oauth/authorize``, ``/login/oauth/access_token``) for tests of the portal's sign-in.

These two endpoints live on GitHub's web host, not its REST API, and are not in the REST description the main fake
checks requests against, so they are a separate small server.  It follows GitHub's documented behaviour: the
authorize page sends the browser back to ``redirect_uri`` with a one-time ``code`` and the ``state`` it was given;
the token endpoint trades a code (with the app's client id and secret, and the same redirect URI) for a user token,
and answers 200 with ``{"error": "bad_verification_code"}`` for a used, expired or unknown code.  Tokens it hands out
are registered in the REST fake (``FakeGitHub.tokens``), acting as the signed-in login there.

    with FakeGitHub() as api, FakeGitHubOAuth(api, "Iv1.client", "client-secret") as web:
        web.signed_in_as = "octo"      # who is signed in to GitHub in the browser
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .server import FakeGitHub


class FakeGitHubOAuth:
    def __init__(self, api: FakeGitHub, client_id: str, client_secret: str):
        self.api = api
        self.client_id = client_id
        self.client_secret = client_secret
        self.signed_in_as: str | None = None  # None: the user declines (GitHub redirects with error=access_denied)
        self.requests: list[dict[str, Any]] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeGitHubOAuth":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("client_id") != self.client_id:
            return 404, {"Content-Type": "text/html"}, b"<h1>404</h1>"
        redirect = query.get("redirect_uri", "")
        state = query.get("state", "")
        if self.signed_in_as is None:
            return 302, {"Location": f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"}, b""
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = {"login": self.signed_in_as, "redirect_uri": redirect}
        return 302, {"Location": f"{redirect}?{urlencode({'code': code, 'state': state})}"}, b""

    def access_token(self, form: dict[str, str]) -> dict[str, str]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return {"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
        token = "gho-test-" + secrets.token_hex(12)  # not GitHub's real prefix (gho_): tests never look like real tokens
        with self.api._lock:
            self.api.tokens.add(token)
            self.api.token_logins[token] = grant["login"]
        return {"access_token": token, "token_type": "bearer", "scope": "repo,read:org"}


def _handler(fake: FakeGitHubOAuth) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            fake.requests.append({"method": "GET", "path": parts.path, "query": query})
            if parts.path != "/login/oauth/authorize":
                return self._send(404, {}, b"")
            self._send(*fake.authorize(query))

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = dict(parse_qsl(raw))
            fake.requests.append({"method": "POST", "path": parts.path, "form": {k: v for k, v in form.items() if k != "client_secret"}})
            if parts.path != "/login/oauth/access_token":
                return self._send(404, {}, b"")
            wants_json = "application/json" in (self.headers.get("Accept") or "")
            body = fake.access_token(form)
            data = json.dumps(body).encode() if wants_json else urlencode(body).encode()
            self._send(200, {"Content-Type": "application/json" if wants_json else "application/x-www-form-urlencoded"}, data)

    return Handler
