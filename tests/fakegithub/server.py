"""A stateful, schema-checking stand-in for GitHub's REST API, for tests.

Why a server and not mocks: the engine talks to GitHub through githubkit over
HTTP, so the honest seam is HTTP.  Every request is matched against GitHub's
published API description (see ``schema.py``); a request GitHub would not
understand is answered the way GitHub would (404/422) *and* recorded in
``server.violations`` so the test fails even when the client swallows errors.
State is kept per repository so a test can assert what a customer would see:
which statuses are on a commit, which comments are on a pull request...

Only the operations the engine uses are implemented (see ``_ROUTES``); any
other operation GitHub knows is answered 501 and recorded as a violation, so a
gap in the fake is loud rather than silently "successful".

Responses are self-checked against the response model of the operation; a
mismatch is a violation too, which keeps the fake honest when GitHub's
description changes.

Threading: ``ThreadingHTTPServer`` serves each connection in its own thread, so
all state is guarded by one re-entrant lock.  Fault delays sleep outside it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import math
import re
import secrets
import string
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import schema

API_VERSIONS = {"2022-11-28", "2026-03-10"}
DOCS = "https://docs.github.com/rest"
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you "
    "try again. If you reach out to GitHub Support for help, please include the "
    "request ID {request_id}."
)
SECONDARY_RATE_LIMIT_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/"
    "rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
PRIMARY_RATE_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
    "#about-the-primary-rate-limit"
)
# GitHub's documented limits that clients trip over in practice.
MAX_COMMENT_BODY = 65536
MAX_STATUS_DESCRIPTION = 140
MAX_STATUSES_PER_CONTEXT = 1000
MAX_ISSUE_TITLE = 256
MAX_INLINE_CONTENT = 1024 * 1024  # larger files come back with encoding "none"
HEADERS_RECORDED = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-github-api-version",
    "if-none-match",
)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(prefix: str, ident: int) -> str:
    # Shaped like GitHub's "next" global ids (e.g. "IC_kwDOABCD"), opaque to clients.
    return f"{prefix}_kwDO{base64.b64encode(str(ident).encode()).decode().rstrip('=')}"


def _is_sha(ref: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{40}", ref))


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324


class _Reply:
    """What a handler returns: status, JSON-able body (or bytes), extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


class _Abort(Exception):
    """Raised inside a handler to answer with an error and leave state untouched."""

    def __init__(self, reply: _Reply):
        self.reply = reply


# --------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------

FAULT_KINDS = ("timeout", "secondary_rate_limit", "rate_limit", "too_many_requests", "disconnect")


@dataclass
class FaultRule:
    """Faults served, in order, to requests matching ``method`` and ``pattern``.

    ``hits`` records the (method, path, fault) of every request that got a fault,
    so a test can assert that its client really saw them.
    """

    method: str
    pattern: re.Pattern[str]
    faults: tuple[Any, ...]
    times: float  # how often the whole sequence is played; math.inf = forever
    hits: list[tuple[str, str, Any]] = field(default_factory=list)
    _served: int = 0

    @property
    def exhausted(self) -> bool:
        return self._served >= len(self.faults) * self.times

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and bool(self.pattern.search(path))

    def take(self) -> Any:
        fault = self.faults[self._served % len(self.faults)]
        self._served += 1
        return fault


def _check_fault(fault: Any) -> Any:
    if isinstance(fault, int) and 400 <= fault <= 599:
        return fault
    if (
        isinstance(fault, tuple)
        and fault
        and fault[0] in FAULT_KINDS
        and (fault[0] == "disconnect" or (len(fault) == 2 and isinstance(fault[1], (int, float))))
    ):
        return fault
    if fault == "disconnect":
        return ("disconnect",)
    raise ValueError(
        f"unsupported fault {fault!r}: use an HTTP status (e.g. 500, 429) or one of "
        f"('timeout', s), ('secondary_rate_limit', s), ('rate_limit', s), "
        f"('too_many_requests', s), ('disconnect',)"
    )


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------


class FakeGitHub:
    """GitHub's REST API on 127.0.0.1, checked against GitHub's API description.

    Use as a context manager (or ``start()``/``stop()``); ``url`` is the API base
    URL to give the client.  State is seeded with ``add_repo``/``put_file``/
    ``add_issue``/``add_installation`` and read back with ``statuses``,
    ``comments``, ``deployments``, ``issues``, ``properties``, ``dispatches``
    and ``writes``; these return copies, oldest first.

    ``auto_create`` (default True): repositories, app installations and issues
    that a request refers to spring into existence, so a test can comment on
    PR #7 of ``acme/app`` without seeding it.  Set it False to get GitHub's 404s
    for anything not seeded.
    """

    # GitHub's caching headers for authenticated GETs, with a weak ETag per body.
    # githubkit's HTTP cache (on by default) revalidates with If-None-Match and
    # gets 304 when nothing changed, exactly as against GitHub, so reads after
    # writes are not stale.  Set ``cache_control`` to experiment with others.
    GITHUB_CACHE_CONTROL = "private, max-age=60, s-maxage=60"

    def __init__(
        self,
        *,
        tokens: set[str] | None = None,
        auto_create: bool = True,
        html_url: str = "https://github.com",
        login: str = "test-user",
        cache_control: str = GITHUB_CACHE_CONTROL,
        self_check: bool = True,
    ):
        self.tokens: set[str] = set(tokens) if tokens is not None else {"test-token"}
        # Who a token acts as (comment authors, status creators...).  Tokens not
        # listed act as ``login``; installation tokens act as "<app-slug>[bot]".
        self.token_logins: dict[str, str] = {}
        self.auto_create = auto_create
        self.html_base = html_url.rstrip("/")
        self.login = login
        self.cache_control = cache_control
        self.self_check = self_check

        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []

        self._index = schema.load_index()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[FaultRule] = []
        self._ids = itertools.count(1_000_000_001)
        self._user_ids: dict[str, int] = {}
        self._repos: dict[tuple[str, str], dict[str, Any]] = {}
        self._installations: dict[str, dict[str, Any]] = {}  # owner -> installation
        self._installation_tokens: dict[str, dict[str, Any]] = {}
        self._property_definitions: dict[str, dict[str, dict[str, Any]]] = {}
        self._teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, team slug) -> login -> membership state
        self._rate_used = 0
        self._rate_reset = int(time.time()) + 3600
        self._routes = self._resolve_routes()

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeGitHub is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGitHub":
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a ("timeout", s) fault
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- seeding -----------------------------------------------------------

    def add_repo(
        self,
        owner: str,
        repo: str,
        *,
        default_branch: str = "main",
        properties: dict[str, str | list[str] | None] | None = None,
        private: bool = True,
        owner_type: str = "Organization",
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create (or update) a repository; returns its internal record."""
        with self._lock:
            r = self._repos.get((owner, repo))
            if r is None:
                r = self._repos[(owner, repo)] = {
                    "id": next(self._ids),
                    "owner": owner,
                    "name": repo,
                    "owner_type": owner_type,
                    "private": private,
                    "description": description,
                    "default_branch": default_branch,
                    "created_at": _now(),
                    "refs": {},  # branch/tag name -> sha
                    "files": {},  # ref -> {path: bytes}
                    "properties": {},
                    "statuses": [],
                    "issues": {},  # number -> issue record
                    "comments": {},  # id -> comment record
                    "labels": {},
                    "deployments": [],
                    "dispatches": [],
                    "next_number": 1,
                }
            else:
                r.update(default_branch=default_branch, private=private, owner_type=owner_type)
                if description is not None:
                    r["description"] = description
            for name, value in (properties or {}).items():
                if value is None:
                    r["properties"].pop(name, None)
                else:
                    r["properties"][name] = value
            return r

    def set_ref(self, owner: str, repo: str, ref: str, sha: str) -> None:
        """Point a branch or tag at a commit (used to resolve refs to SHAs)."""
        with self._lock:
            self._repo(owner, repo, create=True)["refs"][ref] = sha

    def grant(self, owner: str, repo: str, login: str, permission: str = "pull") -> None:
        """``login`` may ``pull`` (read), ``push``… ``owner/repo`` (listed by ``GET /user/repos`` for that user's tokens)."""
        with self._lock:
            self._repo(owner, repo, create=True).setdefault("access", {})[login] = permission

    def add_team_member(self, org: str, team: str, login: str, state: str = "active") -> None:
        with self._lock:
            self._teams.setdefault((org, team), {})[login] = state

    def set_commit_time(self, owner: str, repo: str, sha: str, when: datetime) -> None:
        """When commit ``sha`` was made (``GET …/git/commits/{sha}``'s committer date; default: when first asked)."""
        with self._lock:
            self._repo(owner, repo, create=True).setdefault("commit_times", {})[sha] = when

    def put_file(self, owner: str, repo: str, ref: str, path: str, content: bytes | str) -> None:
        """Make ``path`` exist with ``content`` at ``ref`` (branch, tag or SHA)."""
        data = content.encode() if isinstance(content, str) else bytes(content)
        with self._lock:
            r = self._repo(owner, repo, create=True)
            r["files"].setdefault(ref, {})[path.strip("/")] = data

    def add_issue(
        self,
        owner: str,
        repo: str,
        title: str = "An issue",
        *,
        body: str | None = None,
        labels: list[str] = (),  # type: ignore[assignment]
        user: str | None = None,
        pull_request: bool = False,
        number: int | None = None,
    ) -> dict[str, Any]:
        """Seed an issue (or, with ``pull_request=True``, a pull request's issue)."""
        with self._lock:
            r = self._repo(owner, repo, create=True)
            issue = self._new_issue(r, title, body, list(labels), [], user or self.login, number)
            issue["pull_request"] = pull_request
            return self._issue_json(r, issue)

    def add_pull(
        self,
        owner: str,
        repo: str,
        number: int,
        head_sha: str,
        *,
        state: str = "open",
        head_ref: str = "feature",
        head_repo: tuple[str, str] | None = None,
        title: str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Seed (or update) pull request ``number`` whose head is ``head_sha``; ``head_repo``: a fork."""
        with self._lock:
            r = self._repo(owner, repo, create=True)
            issue = r["issues"].get(number)
            if issue is None:
                issue = self._new_issue(r, title or f"Pull request #{number}", None, [], [], user or self.login, number)
            issue["pull_request"] = True
            issue["pull"] = {"head_sha": head_sha, "head_ref": head_ref, "head_repo": head_repo or (owner, repo)}
            issue["state"] = state
            issue["closed_at"] = None if state == "open" else _now()
            return self._issue_json(r, issue)

    def add_installation(
        self,
        owner: str,
        *,
        installation_id: int | None = None,
        app_id: int = 1,
        app_slug: str = "test-app",
        permissions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Install the GitHub App on ``owner`` (all repositories)."""
        with self._lock:
            inst = {
                "id": installation_id or next(self._ids),
                "owner": owner,
                "app_id": app_id,
                "app_slug": app_slug,
                "permissions": permissions
                or {
                    "metadata": "read",
                    "contents": "read",
                    "issues": "write",
                    "pull_requests": "write",
                    "statuses": "write",
                    "deployments": "write",
                    "repository_custom_properties": "write",
                },
                "created_at": _now(),
            }
            self._installations[owner] = inst
            return copy.deepcopy(inst)

    def define_property(
        self,
        org: str,
        name: str,
        *,
        value_type: str = "string",
        allowed_values: list[str] | None = None,
        default_value: str | list[str] | None = None,
    ) -> None:
        """Declare an org custom property.  Once an org has definitions, writes of
        undeclared properties or disallowed values get GitHub's 422."""
        with self._lock:
            self._property_definitions.setdefault(org, {})[name] = self._definition(
                {"value_type": value_type, "allowed_values": allowed_values, "default_value": default_value})

    @staticmethod
    def _definition(body: dict[str, Any]) -> dict[str, Any]:
        """A stored definition: what GitHub keeps of a set payload (missing optional fields: their defaults)."""
        return {
            "value_type": body["value_type"],
            "required": bool(body.get("required", False)),
            "default_value": copy.deepcopy(body.get("default_value")),
            "description": body.get("description"),
            "allowed_values": copy.deepcopy(body.get("allowed_values")),
            "values_editable_by": body.get("values_editable_by") or "org_actors",
            "require_explicit_values": bool(body.get("require_explicit_values", False)),
        }

    def property_definitions(self, org: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._property_definitions.get(org, {}))

    # -- fault injection ---------------------------------------------------

    def inject(self, method: str, path_regex: str, *faults: Any, times: float | None = None) -> FaultRule:
        """Serve ``faults`` in order to requests matching ``method`` and ``path_regex``.

        ``method`` may be ``"*"``; ``path_regex`` is searched (``re.search``) in the
        request path without its query string.  The sequence is played once, or
        ``times`` times (``math.inf``: forever).  A fault is one of:

        * an HTTP status, e.g. ``500``/``502``/``503`` (JSON error body like
          GitHub's), or ``429`` (with ``Retry-After: 1``);
        * ``("timeout", seconds)``: sleep, then answer normally.  The request IS
          processed after the sleep, as GitHub would process a request whose
          client had already given up: the state changes although the client saw
          a timeout.  That is the case idempotent retries must handle;
        * ``("secondary_rate_limit", retry_after)``: 403, ``Retry-After`` and
          GitHub's secondary-rate-limit message;
        * ``("rate_limit", reset_in)``: 403, ``x-ratelimit-remaining: 0`` and
          ``x-ratelimit-reset`` ``reset_in`` seconds ahead;
        * ``("too_many_requests", retry_after)``: 429 with ``Retry-After``;
        * ``("disconnect",)``: close the connection without answering.

        Apart from the timeout kind, a faulted request leaves state unchanged.
        Faults apply after authentication and schema checks, so a malformed
        request is still reported as a violation.
        """
        if not faults:
            raise ValueError("inject() needs at least one fault")
        rule = FaultRule(
            method=method.upper(),
            pattern=re.compile(path_regex),
            faults=tuple(_check_fault(f) for f in faults),
            times=1 if times is None else times,
        )
        if rule.times <= 0:
            raise ValueError("times must be positive")
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- assertions --------------------------------------------------------

    def statuses(self, owner: str, repo: str, sha: str) -> list[dict[str, Any]]:
        """Commit statuses on ``sha`` (or a ref pointing at it), oldest first."""
        with self._lock:
            r = self._repo(owner, repo)
            if r is None:
                return []
            sha = self._resolve_ref(r, sha)
            return [self._status_json(r, s) for s in r["statuses"] if s["sha"] == sha]

    def combined_status(self, owner: str, repo: str, ref: str) -> dict[str, Any]:
        with self._lock:
            return self._combined_json(self._repo(owner, repo, create=True), ref, 1, 100)

    def comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        """Comments on issue/PR ``number`` as GitHub would list them."""
        with self._lock:
            r = self._repo(owner, repo)
            if r is None:
                return []
            return [
                self._comment_json(r, c)
                for c in sorted(r["comments"].values(), key=lambda c: c["id"])
                if c["issue"] == number
            ]

    def deployments(self, owner: str, repo: str) -> list[dict[str, Any]]:
        """Deployments, oldest first, each with a ``statuses`` list (oldest first)."""
        with self._lock:
            r = self._repo(owner, repo)
            if r is None:
                return []
            out = []
            for d in r["deployments"]:
                dj = self._deployment_json(r, d)
                dj["statuses"] = [self._deployment_status_json(r, d, s) for s in d["statuses"]]
                out.append(dj)
            return out

    def issues(self, owner: str, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(owner, repo)
            if r is None:
                return []
            return [self._issue_json(r, i) for _, i in sorted(r["issues"].items())]

    def properties(self, owner: str, repo: str) -> dict[str, Any]:
        with self._lock:
            r = self._repo(owner, repo)
            return {} if r is None else copy.deepcopy(r["properties"])

    def dispatches(self, owner: str, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            r = self._repo(owner, repo)
            return [] if r is None else copy.deepcopy(r["dispatches"])

    def writes(self) -> list[dict[str, Any]]:
        """Recorded POST/PATCH/PUT/DELETE requests, including failed/faulted ones
        (check each entry's ``status``)."""
        with self._lock:
            return [
                copy.deepcopy(r)
                for r in self.requests
                if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
            ]

    # ======================================================================
    # Request processing
    # ======================================================================

    def _violation(self, message: str) -> None:
        with self._lock:
            self.violations.append(message)

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> _Reply | None:
        """Process one request; ``None`` means drop the connection."""
        split = urlsplit(raw_path)
        path = split.path
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        query: dict[str, Any] = {}
        for k, v in query_pairs:
            query.setdefault(k, []).append(v)
        query = {k: v[0] if len(v) == 1 else v for k, v in query.items()}

        body: Any = None
        bad_json = False
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                bad_json = True
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "json": body,
            "headers": {k: headers[k] for k in HEADERS_RECORDED if k in headers},
            "status": None,
            "operation": None,
            "fault": None,
        }
        with self._lock:
            self.requests.append(record)

        reply = self._process(method, path, query, headers, body, raw_body, bad_json, record)
        if reply is not None:
            record["status"] = reply.status
        return reply

    def _process(self, method, path, query, headers, body, raw_body, bad_json, record) -> _Reply | None:
        found = self._index.match(method, path)
        op = found[0] if found else None
        if op is not None:
            record["operation"] = op.name

        # Authentication comes first, as on GitHub (an unauthenticated probe of an
        # unknown path is a 401 there, not a 404).
        denied = self._authenticate(op, headers)
        if denied is not None:
            return denied

        version = headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            self._violation(f"unsupported X-GitHub-Api-Version {version!r}: {method} {path}")
            return self._error(400, f"API version {version} is not supported.", op)

        if op is None:
            self._violation(f"unknown operation: {method} {path}")
            return self._error(404, "Not Found", None)
        params = found[1]

        if bad_json:
            self._violation(f"body is not JSON: {method} {path}")
            return self._error(400, "Problems parsing JSON", op)
        try:
            schema.validate_query(op, query)
            schema.validate_body(op, body, raw_body or None)
        except schema.SchemaViolation as exc:
            self._violation(f"{exc.message} [{method} {path}]")
            return self._error(422, "Invalid request.\n\n" + exc.message, op, errors=exc.errors or None)

        route = self._routes.get((op.method, op.path))
        if route is None:
            self._violation(f"unimplemented operation {op.name}: {method} {op.path} ({path})")
            return self._error(501, f"fakegithub does not implement {op.operation_id}", op)

        fault = self._next_fault(method, path)
        if fault is not None:
            record["fault"] = fault
            if isinstance(fault, tuple) and fault[0] == "timeout":
                # Sleep outside the lock, then fall through to normal processing.
                self._stopping.wait(fault[1])
            else:
                return self._fault_reply(fault, op)

        ctx = _Ctx(self, op, params, query, body, headers)
        try:
            with self._lock:
                reply = route(ctx)
        except _Abort as abort:
            reply = abort.reply
        except Exception:  # a bug in the fake must fail the test, not hang the client
            self._violation(f"fakegithub crashed on {method} {path}:\n{traceback.format_exc()}")
            return self._error(500, "fakegithub internal error", op)

        if self.self_check and 200 <= reply.status < 300 and not isinstance(reply.body, bytes):
            problems = schema.validate_response(op, reply.body)
            if problems:
                self._violation(
                    f"fakegithub response self-check failed for {op.name}: " + "; ".join(problems)
                )
        return reply

    def _authenticate(self, op: schema.Operation | None, headers: dict[str, str]) -> _Reply | None:
        auth = headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if not auth:
            return self._error(401, "Requires authentication", op)

        if op is not None and self._jwt_only(op):
            # App endpoints take the app's JWT, never an installation/user token.
            if scheme != "bearer" or credential.count(".") != 2:
                return self._error(
                    401, "A JSON web token could not be decoded", op,
                )
            problem = _jwt_problem(credential)
            if problem:
                return self._error(401, problem, op)
            return None

        if scheme not in ("token", "bearer") or credential not in self.tokens:
            return self._error(401, "Bad credentials", op)
        return None

    @staticmethod
    def _jwt_only(op: schema.Operation) -> bool:
        return op.path.startswith("/app") or op.path.endswith("/installation")

    def _next_fault(self, method: str, path: str) -> Any:
        with self._lock:
            for rule in self._faults:
                if not rule.exhausted and rule.matches(method, path):
                    fault = rule.take()
                    rule.hits.append((method, path, fault))
                    return fault
        return None

    def _fault_reply(self, fault: Any, op: schema.Operation) -> _Reply | None:
        request_id = secrets.token_hex(8).upper()
        if isinstance(fault, int):
            if fault == 429:
                fault = ("too_many_requests", 1)
            else:
                phrase = HTTPStatus(fault).phrase if fault in HTTPStatus._value2member_map_ else "Error"
                message = "Server Error" if fault >= 500 else phrase
                return self._error(fault, message, op)
        kind, arg = fault[0], (fault[1] if len(fault) > 1 else None)
        if kind == "disconnect":
            return None
        if kind in ("secondary_rate_limit", "too_many_requests"):
            reply = self._error(
                403 if kind == "secondary_rate_limit" else 429,
                SECONDARY_RATE_LIMIT_MESSAGE.format(request_id=request_id),
                op,
                docs=SECONDARY_RATE_LIMIT_DOCS,
            )
            reply.headers["Retry-After"] = str(int(math.ceil(arg)))
            return reply
        if kind == "rate_limit":
            reply = self._error(
                403,
                f"API rate limit exceeded for installation ID 1. If you reach out to "
                f"GitHub Support for help, please include the request ID {request_id}.",
                op,
                docs=PRIMARY_RATE_LIMIT_DOCS,
            )
            reply.headers.update(
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(int(time.time() + arg)),
                    "x-ratelimit-resource": "core",
                }
            )
            return reply
        raise AssertionError(fault)  # pragma: no cover - _check_fault guards this

    def _error(
        self,
        status: int,
        message: str,
        op: schema.Operation | None,
        *,
        errors: list[dict[str, Any]] | None = None,
        docs: str | None = None,
    ) -> _Reply:
        body: dict[str, Any] = {
            "message": message,
            "documentation_url": docs or (op.docs_url if op and op.docs_url else DOCS),
            "status": str(status),
        }
        if errors:
            body["errors"] = errors
        return _Reply(status, body)

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            if time.time() >= self._rate_reset:
                self._rate_used, self._rate_reset = 0, int(time.time()) + 3600
            self._rate_used += 1
            return {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": str(max(0, 5000 - self._rate_used)),
                "x-ratelimit-used": str(self._rate_used),
                "x-ratelimit-reset": str(self._rate_reset),
                "x-ratelimit-resource": "core",
            }

    # ======================================================================
    # Routes
    # ======================================================================

    def _resolve_routes(self) -> dict[tuple[str, str], Callable[["_Ctx"], _Reply]]:
        routes = {}
        for (method, template), name in _ROUTES.items():
            # Fail fast if GitHub's description (githubkit upgrade) drops a route.
            if self._index.get(method, template) is None:
                raise RuntimeError(f"{method} {template} is not in GitHub's API description")
            routes[(method, template)] = getattr(self, name)
        return routes

    # -- shared helpers ----------------------------------------------------

    def _repo(self, owner: str, repo: str, *, create: bool = False) -> dict[str, Any] | None:
        r = self._repos.get((owner, repo))
        if r is None and create:
            r = self.add_repo(owner, repo)
        return r

    def _need_repo(self, ctx: "_Ctx") -> dict[str, Any]:
        r = self._repo(ctx.params["owner"], ctx.params["repo"], create=self.auto_create)
        if r is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        return r

    def _resolve_ref(self, r: dict[str, Any], ref: str) -> str:
        if _is_sha(ref):
            return ref
        for candidate in (ref, ref.removeprefix("refs/"), ref.removeprefix("refs/heads/"),
                          ref.removeprefix("heads/"), ref.removeprefix("refs/tags/"),
                          ref.removeprefix("tags/")):
            if candidate in r["refs"]:
                return r["refs"][candidate]
        # Unknown refs get a stable made-up commit so statuses/deployments by
        # branch name and by "SHA" agree within a test.
        sha = hashlib.sha1(f"{r['owner']}/{r['name']}@{ref}".encode()).hexdigest()  # noqa: S324
        r["refs"][ref] = sha
        return sha

    def _api(self, path: str) -> str:
        return f"{self.url}{path}"

    def _user(self, login: str) -> dict[str, Any]:
        uid = self._user_ids.setdefault(login, next(self._ids))
        is_bot = login.endswith("[bot]")
        org = any(r["owner"] == login and r["owner_type"] == "Organization" for r in self._repos.values())
        base = self._api(f"/users/{login}")
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("BOT" if is_bot else "O" if org else "U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": base,
            "html_url": f"{self.html_base}/{'apps/' + login[:-5] if is_bot else login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": "Bot" if is_bot else "Organization" if org else "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def _actor(self, headers: dict[str, str]) -> str:
        credential = headers.get("authorization", "").partition(" ")[2].strip()
        return self.token_logins.get(credential, self.login)

    def _association(self, r: dict[str, Any], login: str) -> str:
        if login == r["owner"]:
            return "OWNER"
        return "NONE" if login.endswith("[bot]") else "COLLABORATOR"

    def _paginate(self, ctx: "_Ctx", items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """GitHub-style page slicing plus the ``Link`` header (first/prev/next/last)."""
        per_page = min(max(int(ctx.query.get("per_page", 30)), 1), 100)
        page = max(int(ctx.query.get("page", 1)), 1)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(p: int, rel: str) -> str:
            q = {k: v for k, v in ctx.query.items() if k != "page"}
            q["per_page"] = per_page
            q["page"] = p
            return f'<{self._api(ctx.path)}?{urlencode(q, doseq=True)}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        return chunk, ({"Link": ", ".join(links)} if links else {})

    @staticmethod
    def _validation_failed(op: schema.Operation, resource: str, field_: str, message: str, code: str = "custom") -> _Abort:
        return _Abort(
            _Reply(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": resource, "code": code, "field": field_, "message": message}],
                    "documentation_url": op.docs_url or DOCS,
                    "status": "422",
                },
            )
        )

    def _repo_urls(self, r: dict[str, Any]) -> dict[str, Any]:
        full = f"{r['owner']}/{r['name']}"
        api = self._api(f"/repos/{full}")
        return {
            "id": r["id"],
            "node_id": _node_id("R", r["id"]),
            "name": r["name"],
            "full_name": full,
            "owner": self._user(r["owner"]),
            "private": r["private"],
            "html_url": f"{self.html_base}/{full}",
            "description": r["description"],
            "fork": False,
            "url": api,
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "contributors_url": f"{api}/contributors",
            "deployments_url": f"{api}/deployments",
            "downloads_url": f"{api}/downloads",
            "events_url": f"{api}/events",
            "forks_url": f"{api}/forks",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_url": f"git://{self.html_base.split('://', 1)[-1]}/{full}.git",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "languages_url": f"{api}/languages",
            "merges_url": f"{api}/merges",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "ssh_url": f"git@{self.html_base.split('://', 1)[-1]}:{full}.git",
            "stargazers_url": f"{api}/stargazers",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "tags_url": f"{api}/tags",
            "teams_url": f"{api}/teams",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "clone_url": f"{self.html_base}/{full}.git",
            "mirror_url": None,
            "hooks_url": f"{api}/hooks",
            "svn_url": f"{self.html_base}/{full}",
        }

    # -- repository --------------------------------------------------------

    def _get_authenticated_user(self, ctx: "_Ctx") -> _Reply:
        """GET /user: the token's user; installation tokens get 403 like on GitHub."""
        login = self._actor(ctx.headers)
        if login.endswith("[bot]"):
            return self._error(403, "Resource not accessible by integration", ctx.op)
        now = _iso(datetime.now(timezone.utc))
        return _Reply(200, self._user(login) | {
            "name": None, "company": None, "blog": "", "location": None, "email": None, "hireable": None, "bio": None,
            "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0, "created_at": now, "updated_at": now})

    def _get_git_ref(self, ctx: "_Ctx") -> _Reply:
        """GET /repos/{owner}/{repo}/git/ref/{ref}, e.g. ``heads/main`` (refs set with ``set_ref``)."""
        r = self._need_repo(ctx)
        ref = ctx.params["ref"]
        short = ref.split("/", 1)[1] if ref.startswith(("heads/", "tags/")) else ref
        sha = r["refs"].get(ref) or r["refs"].get(short)
        if sha is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        full = f"{ctx.params['owner']}/{ctx.params['repo']}"
        return _Reply(200, {"ref": f"refs/{ref}", "node_id": "REF_" + sha[:8],
                            "url": self._api(f"/repos/{full}/git/refs/{ref}"),
                            "object": {"type": "commit", "sha": sha, "url": self._api(f"/repos/{full}/git/commits/{sha}")}})

    def _get_repo(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        created = _iso(r["created_at"])
        open_issues = sum(1 for i in r["issues"].values() if i["state"] == "open")
        body = self._repo_urls(r) | {
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": r["default_branch"],
            "open_issues_count": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if r["private"] else "public",
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            "allow_rebase_merge": True,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
            "allow_forking": False,
            "web_commit_signoff_required": False,
            "subscribers_count": 0,
            "network_count": 0,
            "license": None,
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "custom_properties": copy.deepcopy(self._effective_properties(r)),
        }
        if r["owner_type"] == "Organization":
            body["organization"] = self._user(r["owner"])
        return _Reply(200, body)

    def _dispatch(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        r["dispatches"].append(
            {
                "event_type": ctx.body["event_type"],
                "client_payload": ctx.body.get("client_payload") or {},
                "created_at": _iso(_now()),
                "sender": self._actor(ctx.headers),
            }
        )
        return _Reply(204)

    def _rate_limit(self, ctx: "_Ctx") -> _Reply:
        def bucket(limit: int, used: int = 0) -> dict[str, int]:
            return {"limit": limit, "used": used, "remaining": limit - used, "reset": self._rate_reset}

        core = bucket(5000, min(self._rate_used, 5000))
        resources = {
            "core": core,
            "search": bucket(30),
            "graphql": bucket(5000),
            "integration_manifest": bucket(5000),
            "code_search": bucket(10),
        }
        # "rate" is deprecated but GitHub still sends it; old clients read it.
        return _Reply(200, {"resources": resources, "rate": core})

    # -- contents ----------------------------------------------------------

    def _get_content(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        ref = ctx.query.get("ref") or r["default_branch"]
        path = ctx.params["path"].strip("/")
        files = self._files_at(r, ref)
        full = f"{r['owner']}/{r['name']}"
        if path in files:
            data = files[path]
            accept = ctx.headers.get("accept", "")
            if "raw" in accept:
                return _Reply(200, data, {"Content-Type": "application/vnd.github.raw; charset=utf-8"})
            return _Reply(200, self._content_item(r, ref, path, data, with_content=True))
        children = sorted({p[len(path) + 1 :].split("/", 1)[0] for p in files if p.startswith(path + "/")})
        if not children:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        items = []
        for name in children:
            child = f"{path}/{name}"
            if child in files:
                items.append(self._content_item(r, ref, child, files[child], with_content=False))
            else:
                api = self._api(f"/repos/{full}/contents/{child}?ref={ref}")
                sha = hashlib.sha1(f"tree:{full}@{ref}:{child}".encode()).hexdigest()  # noqa: S324
                items.append(
                    {
                        "type": "dir",
                        "size": 0,
                        "name": name,
                        "path": child,
                        "sha": sha,
                        "url": api,
                        "git_url": self._api(f"/repos/{full}/git/trees/{sha}"),
                        "html_url": f"{self.html_base}/{full}/tree/{ref}/{child}",
                        "download_url": None,
                        "_links": {
                            "self": api,
                            "git": self._api(f"/repos/{full}/git/trees/{sha}"),
                            "html": f"{self.html_base}/{full}/tree/{ref}/{child}",
                        },
                    }
                )
        return _Reply(200, items)

    def _files_at(self, r: dict[str, Any], ref: str) -> dict[str, bytes]:
        for candidate in (ref, ref.removeprefix("refs/heads/"), ref.removeprefix("heads/")):
            if candidate in r["files"]:
                return r["files"][candidate]
        # A SHA that a branch points at sees that branch's files.
        for name, sha in r["refs"].items():
            if sha == ref and name in r["files"]:
                return r["files"][name]
        return {}

    def _content_item(self, r, ref: str, path: str, data: bytes, *, with_content: bool) -> dict[str, Any]:
        full = f"{r['owner']}/{r['name']}"
        sha = _git_blob_sha(data)
        api = self._api(f"/repos/{full}/contents/{path}?ref={ref}")
        git = self._api(f"/repos/{full}/git/blobs/{sha}")
        html = f"{self.html_base}/{full}/blob/{ref}/{path}"
        item: dict[str, Any] = {
            "type": "file",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": api,
            "git_url": git,
            "html_url": html,
            "download_url": f"https://raw.githubusercontent.com/{full}/{ref}/{path}",
            "_links": {"self": api, "git": git, "html": html},
        }
        if with_content:
            if len(data) > MAX_INLINE_CONTENT:
                # GitHub stops inlining past 1 MB; clients must use the raw media type.
                item |= {"content": "", "encoding": "none"}
            else:
                encoded = base64.b64encode(data).decode()
                # GitHub wraps base64 at 60 columns with a trailing newline.
                wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
                item |= {"content": wrapped, "encoding": "base64"}
        return item

    # -- commit statuses ---------------------------------------------------

    def _status_json(self, r, s: dict[str, Any], *, simple: bool = False) -> dict[str, Any]:
        body = {
            "url": self._api(f"/repos/{r['owner']}/{r['name']}/statuses/{s['sha']}"),
            "avatar_url": self._user(s["creator"])["avatar_url"],
            "id": s["id"],
            "node_id": _node_id("SC", s["id"]),
            "state": s["state"],
            "description": s["description"],
            "target_url": s["target_url"],
            "context": s["context"],
            "created_at": _iso(s["created_at"]),
            "updated_at": _iso(s["created_at"]),
        }
        if not simple:
            body["creator"] = self._user(s["creator"])
        return body

    def _create_status(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        b = ctx.body
        sha = ctx.params["sha"]
        description = b.get("description")
        if description is not None and len(description) > MAX_STATUS_DESCRIPTION:
            raise self._validation_failed(
                ctx.op, "Status", "description",
                f"description is too long (maximum is {MAX_STATUS_DESCRIPTION} characters)",
            )
        context = b.get("context") or "default"
        same = sum(1 for s in r["statuses"] if s["sha"] == sha and s["context"] == context)
        if same >= MAX_STATUSES_PER_CONTEXT:
            raise self._validation_failed(
                ctx.op, "Status", "context",
                "This SHA and context has reached the maximum number of statuses.",
            )
        status = {
            "id": next(self._ids),
            "sha": self._resolve_ref(r, sha),
            "state": b["state"],
            "description": description,
            "target_url": b.get("target_url"),
            "context": context,
            "creator": self._actor(ctx.headers),
            "created_at": _now(),
        }
        r["statuses"].append(status)
        return _Reply(201, self._status_json(r, status))

    def _list_statuses(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        sha = self._resolve_ref(r, ctx.params["ref"])
        items = [self._status_json(r, s) for s in reversed(r["statuses"]) if s["sha"] == sha]
        page, headers = self._paginate(ctx, items)
        return _Reply(200, page, headers)

    def _combined_json(self, r, ref: str, page: int, per_page: int) -> dict[str, Any]:
        sha = self._resolve_ref(r, ref)
        latest: dict[str, dict[str, Any]] = {}
        for s in r["statuses"]:
            if s["sha"] == sha:
                latest[s["context"]] = s  # later statuses replace earlier ones
        states = {s["state"] for s in latest.values()}
        # GitHub: failure if any context errored/failed, pending if none or any
        # pending, success only when every context's latest status is success.
        if states & {"error", "failure"}:
            state = "failure"
        elif not states or "pending" in states:
            state = "pending"
        else:
            state = "success"
        statuses = sorted(latest.values(), key=lambda s: s["id"], reverse=True)
        full = f"{r['owner']}/{r['name']}"
        return {
            "state": state,
            "statuses": [
                self._status_json(r, s, simple=True)
                for s in statuses[(page - 1) * per_page : page * per_page]
            ],
            "sha": sha,
            "total_count": len(statuses),
            "repository": self._repo_urls(r),
            "commit_url": self._api(f"/repos/{full}/commits/{sha}"),
            "url": self._api(f"/repos/{full}/commits/{sha}/status"),
        }

    def _combined_status(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        per_page = min(int(ctx.query.get("per_page", 30)), 100)
        page = int(ctx.query.get("page", 1))
        return _Reply(200, self._combined_json(r, ctx.params["ref"], page, per_page))

    # -- issues & comments -------------------------------------------------

    def _label(self, r, name: str) -> dict[str, Any]:
        label = r["labels"].get(name)
        if label is None:
            # GitHub creates labels that an issue write names but the repo lacks.
            lid = next(self._ids)
            label = r["labels"][name] = {
                "id": lid,
                "node_id": _node_id("LA", lid),
                "url": self._api(f"/repos/{r['owner']}/{r['name']}/labels/{name}"),
                "name": name,
                "color": hashlib.md5(name.encode()).hexdigest()[:6],  # noqa: S324
                "default": False,
                "description": None,
            }
        return label

    def _new_issue(self, r, title, body, labels, assignees, login, number=None) -> dict[str, Any]:
        if number is None:
            number = r["next_number"]
        r["next_number"] = max(r["next_number"], number + 1)
        now = _now()
        issue = {
            "id": next(self._ids),
            "number": number,
            "title": str(title),
            "body": body,
            "user": login,
            "labels": [],
            "assignees": list(assignees),
            "state": "open",
            "state_reason": None,
            "locked": False,
            "closed_at": None,
            "closed_by": None,
            "created_at": now,
            "updated_at": now,
            "pull_request": False,
        }
        for name in labels:
            self._label(r, name)
            issue["labels"].append(name)
        r["issues"][number] = issue
        return issue

    def _need_issue(self, ctx: "_Ctx", r, number: int, *, create: bool = False) -> dict[str, Any]:
        issue = r["issues"].get(number)
        if issue is None and create and self.auto_create:
            # Typically a pull request the test did not seed; comment on it anyway.
            issue = self._new_issue(r, f"Pull request #{number}", None, [], [], self.login, number)
            issue["pull_request"] = True
        if issue is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        return issue

    def _issue_json(self, r, i: dict[str, Any]) -> dict[str, Any]:
        full = f"{r['owner']}/{r['name']}"
        api = self._api(f"/repos/{full}/issues/{i['number']}")
        kind = "pull" if i["pull_request"] else "issues"
        comments = sum(1 for c in r["comments"].values() if c["issue"] == i["number"])
        body = {
            "id": i["id"],
            "node_id": _node_id("PR" if i["pull_request"] else "I", i["id"]),
            "url": api,
            "repository_url": self._api(f"/repos/{full}"),
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self.html_base}/{full}/{kind}/{i['number']}",
            "number": i["number"],
            "state": i["state"],
            "state_reason": i["state_reason"],
            "title": i["title"],
            "body": i["body"],
            "user": self._user(i["user"]),
            "labels": [copy.deepcopy(self._label(r, n)) for n in i["labels"]],
            "assignee": self._user(i["assignees"][0]) if i["assignees"] else None,
            "assignees": [self._user(a) for a in i["assignees"]],
            "milestone": None,
            "locked": i["locked"],
            "active_lock_reason": None,
            "comments": comments,
            "closed_at": _iso(i["closed_at"]),
            "created_at": _iso(i["created_at"]),
            "updated_at": _iso(i["updated_at"]),
            "closed_by": self._user(i["closed_by"]) if i["closed_by"] else None,
            "author_association": self._association(r, i["user"]),
            "timeline_url": f"{api}/timeline",
            "reactions": self._reactions(f"{api}/reactions"),
        }
        if i["pull_request"]:
            pr = self._api(f"/repos/{full}/pulls/{i['number']}")
            body["pull_request"] = {
                "url": pr,
                "html_url": f"{self.html_base}/{full}/pull/{i['number']}",
                "diff_url": f"{self.html_base}/{full}/pull/{i['number']}.diff",
                "patch_url": f"{self.html_base}/{full}/pull/{i['number']}.patch",
                "merged_at": None,
            }
            body["draft"] = False
        return body

    @staticmethod
    def _reactions(url: str) -> dict[str, Any]:
        return {"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}

    def _check_issue_text(self, ctx: "_Ctx", title: Any = None, body: Any = None) -> None:
        if title is not None and len(str(title)) > MAX_ISSUE_TITLE:
            raise self._validation_failed(ctx.op, "Issue", "title",
                                          f"title is too long (maximum is {MAX_ISSUE_TITLE} characters)")
        if body is not None and len(body) > MAX_COMMENT_BODY:
            raise self._validation_failed(ctx.op, "Issue", "body",
                                          f"body is too long (maximum is {MAX_COMMENT_BODY} characters)")

    def _create_issue(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        b = ctx.body
        self._check_issue_text(ctx, b["title"], b.get("body"))
        labels = [lb if isinstance(lb, str) else lb.get("name") for lb in (b.get("labels") or [])]
        issue = self._new_issue(r, b["title"], b.get("body"), [lb for lb in labels if lb],
                                b.get("assignees") or [], self._actor(ctx.headers))
        return _Reply(201, self._issue_json(r, issue), {"Location": self._api(f"/repos/{r['owner']}/{r['name']}/issues/{issue['number']}")})

    def _update_issue(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        issue = self._need_issue(ctx, r, int(ctx.params["issue_number"]))
        b = ctx.body
        self._check_issue_text(ctx, b.get("title"), b.get("body"))
        # Validate everything before touching state: a 422 must change nothing.
        changes: dict[str, Any] = {}
        if b.get("title") is not None:
            changes["title"] = str(b["title"])
        if "body" in b:
            changes["body"] = b["body"]
        if b.get("labels") is not None:
            changes["labels"] = [lb if isinstance(lb, str) else lb.get("name") for lb in b["labels"]]
        if b.get("assignees") is not None:
            changes["assignees"] = [a if isinstance(a, str) else a.get("login") for a in b["assignees"]]
        state = b.get("state")
        if state is not None and state != issue["state"]:
            if state == "closed":
                changes |= {"state": "closed", "closed_at": _now(), "closed_by": self._actor(ctx.headers),
                            "state_reason": b.get("state_reason") or "completed"}
            else:
                changes |= {"state": "open", "closed_at": None, "closed_by": None, "state_reason": "reopened"}
        elif b.get("state_reason") is not None:
            changes["state_reason"] = b["state_reason"]
        for name in changes.get("labels", []):
            self._label(r, name)
        issue.update(changes)
        issue["updated_at"] = _now()
        return _Reply(200, self._issue_json(r, issue))

    def _get_issue(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        issue = self._need_issue(ctx, r, int(ctx.params["issue_number"]))
        return _Reply(200, self._issue_json(r, issue))

    _LEVELS = ("pull", "triage", "push", "maintain", "admin")

    def _list_user_repos(self, ctx: "_Ctx") -> _Reply:
        """GET /user/repos: the repositories the token's user owns or was granted (``grant``), with their permissions."""
        import types

        login = self._actor(ctx.headers)
        if login.endswith("[bot]"):
            return self._error(403, "Resource not accessible by integration", ctx.op)
        items = []
        for (owner, name), r in sorted(self._repos.items()):
            level = "admin" if owner == login else r.get("access", {}).get(login)
            if level is None:
                continue
            body = self._get_repo(types.SimpleNamespace(params={"owner": owner, "repo": name}, op=ctx.op)).body
            body.pop("custom_properties", None)
            rank = self._LEVELS.index(level)
            body["permissions"] = {lvl: rank >= i for i, lvl in enumerate(self._LEVELS)}
            items.append(body)
        page, links = self._paginate(ctx, items)
        return _Reply(200, page, links)

    def _get_team_membership(self, ctx: "_Ctx") -> _Reply:
        """GET /orgs/{org}/teams/{team_slug}/memberships/{username}: 404 unless ``add_team_member`` made them one."""
        state = self._teams.get((ctx.params["org"], ctx.params["team_slug"]), {}).get(ctx.params["username"])
        if state is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        org, team, user = ctx.params["org"], ctx.params["team_slug"], ctx.params["username"]
        return _Reply(200, {"url": self._api(f"/orgs/{org}/teams/{team}/memberships/{user}"), "role": "member", "state": state})

    def _get_git_commit(self, ctx: "_Ctx") -> _Reply:
        """GET /repos/{owner}/{repo}/git/commits/{commit_sha}: a commit object (its time from ``set_commit_time``)."""
        r = self._need_repo(ctx)
        sha = ctx.params["commit_sha"]
        if not _is_sha(sha):
            raise _Abort(self._error(404, "Not Found", ctx.op))
        when = _iso(r.setdefault("commit_times", {}).setdefault(sha, _now()))
        full = f"{ctx.params['owner']}/{ctx.params['repo']}"
        person = {"name": "Customer Dev", "email": "dev@example.com", "date": when}
        return _Reply(200, {"sha": sha, "node_id": "C_" + sha[:8], "url": self._api(f"/repos/{full}/git/commits/{sha}"),
                            "html_url": f"{self.html_base}/{full}/commit/{sha}", "author": person, "committer": person,
                            "message": "a change", "tree": {"sha": "0" * 40, "url": self._api(f"/repos/{full}/git/trees/{'0' * 40}")},
                            "parents": [], "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                                            "verified_at": None}})

    def _get_pull(self, ctx: "_Ctx") -> _Reply:
        """GET /repos/{owner}/{repo}/pulls/{pull_number}: pull requests seeded with ``add_pull``."""
        r = self._need_repo(ctx)
        issue = r["issues"].get(int(ctx.params["pull_number"]))
        if issue is None or "pull" not in issue:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        return _Reply(200, self._pull_json(r, issue))

    def _pull_json(self, r: dict[str, Any], i: dict[str, Any]) -> dict[str, Any]:
        full = f"{r['owner']}/{r['name']}"
        api = self._api(f"/repos/{full}/pulls/{i['number']}")
        issue_api = self._api(f"/repos/{full}/issues/{i['number']}")
        html = f"{self.html_base}/{full}/pull/{i['number']}"
        pull = i["pull"]
        head_repo = self._repo(*pull["head_repo"], create=True)
        base_sha = r["refs"].get(r["default_branch"]) or hashlib.sha1(f"{full}@base".encode()).hexdigest()  # noqa: S324

        def repository(rec: dict[str, Any]) -> dict[str, Any]:
            created = _iso(rec["created_at"])
            return self._repo_urls(rec) | {
                "homepage": None, "language": None, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
                "size": 0, "default_branch": rec["default_branch"], "open_issues_count": 0, "is_template": False,
                "topics": [], "has_issues": True, "has_projects": True, "has_wiki": False, "has_pages": False,
                "has_downloads": True, "has_discussions": False, "archived": False, "disabled": False,
                "visibility": "private" if rec["private"] else "public", "pushed_at": created, "created_at": created,
                "updated_at": created, "allow_forking": False, "web_commit_signoff_required": False,
                "license": None, "forks": 0, "open_issues": 0, "watchers": 0}

        def link(href: str) -> dict[str, str]:
            return {"href": href}

        return {
            "url": api, "id": i["id"], "node_id": _node_id("PR", i["id"]), "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_api,
            "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
            "review_comment_url": self._api(f"/repos/{full}/pulls/comments{{/number}}"),
            "comments_url": f"{issue_api}/comments", "statuses_url": self._api(f"/repos/{full}/statuses/{pull['head_sha']}"),
            "number": i["number"], "state": i["state"], "locked": i["locked"], "title": i["title"],
            "user": self._user(i["user"]), "body": i["body"], "labels": [], "milestone": None,
            "active_lock_reason": None, "created_at": _iso(i["created_at"]), "updated_at": _iso(i["updated_at"]),
            "closed_at": _iso(i["closed_at"]), "merged_at": None, "merge_commit_sha": None,
            "assignees": [self._user(a) for a in i["assignees"]], "requested_reviewers": [], "requested_teams": [],
            "head": {"label": f"{head_repo['owner']}:{pull['head_ref']}", "ref": pull["head_ref"], "sha": pull["head_sha"],
                     "user": self._user(head_repo["owner"]), "repo": repository(head_repo)},
            "base": {"label": f"{r['owner']}:{r['default_branch']}", "ref": r["default_branch"], "sha": base_sha,
                     "user": self._user(r["owner"]), "repo": repository(r)},
            "_links": {"self": link(api), "html": link(html), "issue": link(issue_api), "comments": link(f"{issue_api}/comments"),
                       "review_comments": link(f"{api}/comments"),
                       "review_comment": link(self._api(f"/repos/{full}/pulls/comments{{/number}}")),
                       "commits": link(f"{api}/commits"), "statuses": link(self._api(f"/repos/{full}/statuses/{pull['head_sha']}"))},
            "author_association": self._association(r, i["user"]), "auto_merge": None, "draft": False,
            "merged": False, "mergeable": True, "rebaseable": True, "mergeable_state": "clean", "merged_by": None,
            "comments": sum(1 for c in r["comments"].values() if c["issue"] == i["number"]), "review_comments": 0,
            "maintainer_can_modify": False, "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1,
        }

    def _list_issues(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        q = ctx.query
        state = q.get("state", "open")
        wanted = {x.strip() for x in q.get("labels", "").split(",") if x.strip()}
        issues = [
            i for i in r["issues"].values()
            if (state == "all" or i["state"] == state)
            and wanted <= set(i["labels"])
            and ("creator" not in q or i["user"] == q["creator"])
            and ("assignee" not in q or (q["assignee"] == "none" and not i["assignees"])
                 or (q["assignee"] == "*" and i["assignees"]) or q["assignee"] in i["assignees"])
        ]
        sort = q.get("sort", "created")
        key = {
            "created": lambda i: (i["created_at"], i["id"]),
            "updated": lambda i: (i["updated_at"], i["id"]),
            "comments": lambda i: sum(1 for c in r["comments"].values() if c["issue"] == i["number"]),
        }[sort]
        issues.sort(key=key, reverse=q.get("direction", "desc") == "desc")
        page, headers = self._paginate(ctx, [self._issue_json(r, i) for i in issues])
        return _Reply(200, page, headers)

    def _comment_json(self, r, c: dict[str, Any]) -> dict[str, Any]:
        full = f"{r['owner']}/{r['name']}"
        issue = r["issues"].get(c["issue"])
        kind = "pull" if issue and issue["pull_request"] else "issues"
        api = self._api(f"/repos/{full}/issues/comments/{c['id']}")
        return {
            "id": c["id"],
            "node_id": _node_id("IC", c["id"]),
            "url": api,
            "html_url": f"{self.html_base}/{full}/{kind}/{c['issue']}#issuecomment-{c['id']}",
            "body": c["body"],
            "user": self._user(c["user"]),
            "created_at": _iso(c["created_at"]),
            "updated_at": _iso(c["updated_at"]),
            "issue_url": self._api(f"/repos/{full}/issues/{c['issue']}"),
            "author_association": self._association(r, c["user"]),
            "reactions": self._reactions(f"{api}/reactions"),
        }

    def _check_comment_body(self, ctx: "_Ctx", body: str) -> None:
        if not body.strip():
            raise self._validation_failed(ctx.op, "IssueComment", "body", "Body cannot be blank", "missing_field")
        if len(body) > MAX_COMMENT_BODY:
            raise self._validation_failed(
                ctx.op, "IssueComment", "body",
                f"Body is too long (maximum is {MAX_COMMENT_BODY} characters)",
            )

    def _create_comment(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        self._check_comment_body(ctx, ctx.body["body"])
        issue = self._need_issue(ctx, r, int(ctx.params["issue_number"]), create=True)
        now = _now()
        c = {"id": next(self._ids), "issue": issue["number"], "body": ctx.body["body"],
             "user": self._actor(ctx.headers), "created_at": now, "updated_at": now}
        r["comments"][c["id"]] = c
        issue["updated_at"] = now
        reply = self._comment_json(r, c)
        return _Reply(201, reply, {"Location": reply["url"]})

    def _list_comments(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        number = int(ctx.params["issue_number"])
        if number not in r["issues"] and not self.auto_create:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        since = ctx.query.get("since")
        since_dt = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        items = [
            self._comment_json(r, c)
            for c in sorted(r["comments"].values(), key=lambda c: c["id"])
            if c["issue"] == number and (since_dt is None or c["updated_at"] >= since_dt)
        ]
        page, headers = self._paginate(ctx, items)
        return _Reply(200, page, headers)

    def _need_comment(self, ctx: "_Ctx", r) -> dict[str, Any]:
        c = r["comments"].get(int(ctx.params["comment_id"]))
        if c is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        return c

    def _update_comment(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        c = self._need_comment(ctx, r)
        self._check_comment_body(ctx, ctx.body["body"])
        c["body"] = ctx.body["body"]
        c["updated_at"] = _now()
        return _Reply(200, self._comment_json(r, c))

    def _delete_comment(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        c = self._need_comment(ctx, r)
        del r["comments"][c["id"]]
        return _Reply(204)

    # -- deployments -------------------------------------------------------

    def _deployment_json(self, r, d: dict[str, Any]) -> dict[str, Any]:
        api = self._api(f"/repos/{r['owner']}/{r['name']}/deployments/{d['id']}")
        return {
            "url": api,
            "id": d["id"],
            "node_id": _node_id("DE", d["id"]),
            "sha": d["sha"],
            "ref": d["ref"],
            "task": d["task"],
            "payload": copy.deepcopy(d["payload"]),
            "original_environment": d["original_environment"],
            "environment": d["environment"],
            "description": d["description"],
            "creator": self._user(d["creator"]),
            "created_at": _iso(d["created_at"]),
            "updated_at": _iso(d["updated_at"]),
            "statuses_url": f"{api}/statuses",
            "repository_url": self._api(f"/repos/{r['owner']}/{r['name']}"),
            "transient_environment": d["transient_environment"],
            "production_environment": d["production_environment"],
        }

    def _deployment_status_json(self, r, d, s: dict[str, Any]) -> dict[str, Any]:
        dep = self._api(f"/repos/{r['owner']}/{r['name']}/deployments/{d['id']}")
        return {
            "url": f"{dep}/statuses/{s['id']}",
            "id": s["id"],
            "node_id": _node_id("DES", s["id"]),
            "state": s["state"],
            "creator": self._user(s["creator"]),
            "description": s["description"],
            "environment": s["environment"],
            "target_url": s["target_url"],
            "created_at": _iso(s["created_at"]),
            "updated_at": _iso(s["created_at"]),
            "deployment_url": dep,
            "repository_url": self._api(f"/repos/{r['owner']}/{r['name']}"),
            "environment_url": s["environment_url"],
            "log_url": s["log_url"],
        }

    def _create_deployment(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        b = ctx.body
        ref = b["ref"]
        sha = self._resolve_ref(r, ref)
        # GitHub verifies commit statuses before creating a deployment: by
        # default every context on the commit must be successful; an explicit
        # list names the contexts that must; [] skips the check.  Failing that
        # is a 409, which surprises clients that never set required_contexts.
        latest: dict[str, str] = {}
        for s in r["statuses"]:
            if s["sha"] == sha:
                latest[s["context"]] = s["state"]
        required = b.get("required_contexts")
        contexts = list(latest) if required is None else required
        failing = [c for c in contexts if latest.get(c) != "success"]
        if failing:
            raise _Abort(
                _Reply(
                    409,
                    {
                        "message": f"Conflict: Commit status checks failed for {ref}.",
                        "errors": [{"contexts": [{"context": c, "state": latest.get(c, "missing")} for c in failing],
                                    "resource": "Deployment", "field": "required_contexts", "code": "invalid"}],
                        "documentation_url": ctx.op.docs_url or DOCS,
                        "status": "409",
                    },
                )
            )
        environment = b.get("environment") or "production"
        now = _now()
        payload = b.get("payload")
        if isinstance(payload, str):
            # GitHub accepts a JSON string and stores the decoded object.
            try:
                payload = json.loads(payload) if payload else {}
            except ValueError:
                pass
        d = {
            "id": next(self._ids),
            "sha": sha,
            "ref": ref,
            "task": b.get("task") or "deploy",
            "payload": payload if payload is not None else {},
            "original_environment": environment,
            "environment": environment,
            "description": b.get("description") if b.get("description") is not None else "",
            "creator": self._actor(ctx.headers),
            "created_at": now,
            "updated_at": now,
            "transient_environment": bool(b.get("transient_environment") or False),
            "production_environment": bool(
                b["production_environment"] if b.get("production_environment") is not None
                else environment == "production"
            ),
            "statuses": [],
        }
        r["deployments"].append(d)
        return _Reply(201, self._deployment_json(r, d))

    def _list_deployments(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        q = ctx.query
        items = [
            self._deployment_json(r, d)
            for d in reversed(r["deployments"])
            if all(q.get(k) in (None, d[k]) for k in ("sha", "ref", "environment", "task"))
        ]
        page, headers = self._paginate(ctx, items)
        return _Reply(200, page, headers)

    def _need_deployment(self, ctx: "_Ctx", r) -> dict[str, Any]:
        did = int(ctx.params["deployment_id"])
        for d in r["deployments"]:
            if d["id"] == did:
                return d
        raise _Abort(self._error(404, "Not Found", ctx.op))

    def _create_deployment_status(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        d = self._need_deployment(ctx, r)
        b = ctx.body
        description = b.get("description") or ""
        if len(description) > MAX_STATUS_DESCRIPTION:
            raise self._validation_failed(
                ctx.op, "DeploymentStatus", "description",
                f"description is too long (maximum is {MAX_STATUS_DESCRIPTION} characters)",
            )
        if b.get("environment"):
            d["environment"] = b["environment"]
        target_url = b.get("target_url") or ""
        s = {
            "id": next(self._ids),
            "state": b["state"],
            "creator": self._actor(ctx.headers),
            "description": description,
            "environment": d["environment"],
            "target_url": target_url,
            "log_url": b.get("log_url") or target_url,
            "environment_url": b.get("environment_url") or "",
            "created_at": _now(),
        }
        d["statuses"].append(s)
        d["updated_at"] = s["created_at"]
        # auto_inactive (default true): earlier successful deployments to the same
        # non-transient, non-production environment become "inactive".
        if b["state"] == "success" and b.get("auto_inactive") is not False:
            for other in r["deployments"]:
                if (
                    other is not d
                    and other["environment"] == d["environment"]
                    and not other["transient_environment"]
                    and not other["production_environment"]
                    and other["statuses"]
                    and other["statuses"][-1]["state"] == "success"
                ):
                    other["statuses"].append(
                        s | {"id": next(self._ids), "state": "inactive", "description": "",
                             "created_at": _now()}
                    )
        return _Reply(201, self._deployment_status_json(r, d, s))

    def _list_deployment_statuses(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        d = self._need_deployment(ctx, r)
        items = [self._deployment_status_json(r, d, s) for s in reversed(d["statuses"])]
        page, headers = self._paginate(ctx, items)
        return _Reply(200, page, headers)

    # -- custom properties -------------------------------------------------

    def _effective_properties(self, r) -> dict[str, Any]:
        values = {
            name: spec["default_value"]
            for name, spec in self._property_definitions.get(r["owner"], {}).items()
            if spec["default_value"] is not None
        }
        values.update(r["properties"])
        return values

    def _property_list(self, r) -> list[dict[str, Any]]:
        return [{"property_name": k, "value": copy.deepcopy(v)} for k, v in self._effective_properties(r).items()]

    def _check_properties(self, ctx: "_Ctx", org: str, props: list[dict[str, Any]]) -> None:
        definitions = self._property_definitions.get(org)
        if not definitions:
            return  # no definitions seeded: accept any property, as a lenient default
        for p in props:
            spec = definitions.get(p["property_name"])
            if spec is None:
                raise self._validation_failed(
                    ctx.op, "CustomPropertyValue", "property_name",
                    f"Property '{p['property_name']}' does not exist in the organization",
                    "invalid",
                )
            allowed, value = spec["allowed_values"], p["value"]
            values = value if isinstance(value, list) else [] if value is None else [value]
            if allowed is not None and any(v not in allowed for v in values):
                raise self._validation_failed(
                    ctx.op, "CustomPropertyValue", "value",
                    f"Value '{value}' is not allowed for property '{p['property_name']}'",
                    "invalid",
                )

    @staticmethod
    def _apply_properties(r, props: list[dict[str, Any]]) -> None:
        for p in props:
            if p["value"] is None:  # null removes the value
                r["properties"].pop(p["property_name"], None)
            else:
                r["properties"][p["property_name"]] = copy.deepcopy(p["value"])

    def _get_repo_properties(self, ctx: "_Ctx") -> _Reply:
        return _Reply(200, self._property_list(self._need_repo(ctx)))

    def _patch_repo_properties(self, ctx: "_Ctx") -> _Reply:
        r = self._need_repo(ctx)
        self._check_properties(ctx, r["owner"], ctx.body["properties"])
        self._apply_properties(r, ctx.body["properties"])
        return _Reply(204)

    def _get_org_properties(self, ctx: "_Ctx") -> _Reply:
        org = ctx.params["org"]
        repos = sorted((r for r in self._repos.values() if r["owner"] == org), key=lambda r: r["id"])
        items = [
            {
                "repository_id": r["id"],
                "repository_name": r["name"],
                "repository_full_name": f"{org}/{r['name']}",
                "properties": self._property_list(r),
            }
            for r in repos
        ]
        page, headers = self._paginate(ctx, items)
        return _Reply(200, page, headers)

    def _patch_org_properties(self, ctx: "_Ctx") -> _Reply:
        org = ctx.params["org"]
        names = ctx.body["repository_names"]
        if not 1 <= len(names) <= 30:
            raise self._validation_failed(ctx.op, "CustomPropertyValue", "repository_names",
                                          "Between 1 and 30 repositories can be updated at once", "invalid")
        self._check_properties(ctx, org, ctx.body["properties"])
        repos = []
        for name in names:
            r = self._repo(org, name, create=self.auto_create)
            if r is None:
                raise _Abort(self._error(404, "Not Found", ctx.op))
            repos.append(r)
        for r in repos:
            self._apply_properties(r, ctx.body["properties"])
        return _Reply(204)

    def _definition_json(self, org: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"property_name": name, "url": self._api(f"/orgs/{org}/properties/schema/{name}"), "source_type": "organization",
                **copy.deepcopy(spec)}

    def _get_org_property_schema(self, ctx: "_Ctx") -> _Reply:
        org = ctx.params["org"]
        return _Reply(200, [self._definition_json(org, n, d) for n, d in self._property_definitions.get(org, {}).items()])

    def _patch_org_property_schema(self, ctx: "_Ctx") -> _Reply:
        """Create or replace definitions in a batch, checked like GitHub: select types need allowed values,
        the default must be allowed, a required property needs a default."""
        org = ctx.params["org"]
        stored = []
        for p in ctx.body["properties"]:
            spec = self._definition(p)
            name, allowed, default = p["property_name"], spec["allowed_values"], spec["default_value"]
            if spec["value_type"] in ("single_select", "multi_select") and not allowed:
                raise self._validation_failed(ctx.op, "CustomProperty", "allowed_values", f"Property '{name}' needs allowed values", "invalid")
            defaults = default if isinstance(default, list) else [] if default is None else [default]
            if allowed and any(d not in allowed for d in defaults):
                raise self._validation_failed(ctx.op, "CustomProperty", "default_value", f"Default value of '{name}' is not allowed", "invalid")
            if spec["value_type"] == "true_false" and any(d not in ("true", "false") for d in defaults):
                raise self._validation_failed(ctx.op, "CustomProperty", "default_value", f"Default value of '{name}' is not true or false", "invalid")
            if spec["required"] and not defaults:
                raise self._validation_failed(ctx.op, "CustomProperty", "default_value", f"Required property '{name}' needs a default value", "invalid")
            stored.append((name, spec))
        with self._lock:
            definitions = self._property_definitions.setdefault(org, {})
            for name, spec in stored:
                definitions[name] = spec
        return _Reply(200, [self._definition_json(org, n, d) for n, d in stored])

    # -- GitHub App --------------------------------------------------------

    def _installation_for(self, ctx: "_Ctx", owner: str) -> dict[str, Any]:
        inst = self._installations.get(owner)
        if inst is None and self.auto_create:
            self.add_installation(owner)
            inst = self._installations[owner]
        if inst is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        return inst

    def _installation_json(self, inst: dict[str, Any]) -> dict[str, Any]:
        owner = inst["owner"]
        account = self._user(owner)
        return {
            "id": inst["id"],
            "client_id": f"Iv1.{hashlib.sha1(str(inst['app_id']).encode()).hexdigest()[:16]}",  # noqa: S324
            "account": account,
            "repository_selection": "all",
            "access_tokens_url": self._api(f"/app/installations/{inst['id']}/access_tokens"),
            "repositories_url": self._api("/installation/repositories"),
            "html_url": f"{self.html_base}/organizations/{owner}/settings/installations/{inst['id']}",
            "app_id": inst["app_id"],
            "app_slug": inst["app_slug"],
            "target_id": account["id"],
            "target_type": account["type"],
            "permissions": copy.deepcopy(inst["permissions"]),
            "events": [],
            "created_at": _iso(inst["created_at"]),
            "updated_at": _iso(inst["created_at"]),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def _get_org_installation(self, ctx: "_Ctx") -> _Reply:
        return _Reply(200, self._installation_json(self._installation_for(ctx, ctx.params["org"])))

    def _get_repo_installation(self, ctx: "_Ctx") -> _Reply:
        self._need_repo(ctx)
        return _Reply(200, self._installation_json(self._installation_for(ctx, ctx.params["owner"])))

    def _create_installation_token(self, ctx: "_Ctx") -> _Reply:
        iid = int(ctx.params["installation_id"])
        inst = next((i for i in self._installations.values() if i["id"] == iid), None)
        if inst is None:
            raise _Abort(self._error(404, "Not Found", ctx.op))
        b = ctx.body or {}
        owned = {name for (o, name) in self._repos if o == inst["owner"]}
        for name in b.get("repositories") or []:
            if name not in owned and not self.auto_create:
                raise self._validation_failed(ctx.op, "InstallationToken", "repositories",
                                              "There is at least one repository that does not exist or is not accessible to the parent installation.",
                                              "invalid")
        permissions = b.get("permissions") or inst["permissions"]
        for perm, level in permissions.items():
            granted = inst["permissions"].get(perm)
            if level is not None and (granted is None or (level == "write" and granted == "read")):
                raise _Abort(self._error(
                    422, "The permissions requested are not granted to this installation.", ctx.op))
        token = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        expires = _now() + timedelta(hours=1)
        self.tokens.add(token)
        self.token_logins[token] = f"{inst['app_slug']}[bot]"
        self._installation_tokens[token] = {"installation_id": iid, "expires_at": expires}
        selected = bool(b.get("repositories") or b.get("repository_ids"))
        return _Reply(
            201,
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": copy.deepcopy(permissions),
                "repository_selection": "selected" if selected else "all",
            },
        )


def _jwt_problem(jwt: str) -> str | None:
    """GitHub's objection to an app JWT's claims, if the payload is readable.

    Signatures are not checked (the fake has no app key); unreadable payloads
    are let through so tests may use dummy ``a.b.c`` JWTs.
    """
    try:
        payload_b64 = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    except (ValueError, IndexError):
        return None
    if not isinstance(claims, dict):
        return None
    now = time.time()
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, (int, float)):
        if exp < now:
            return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
        if exp - now > 600 + 60:  # GitHub allows 10 minutes; 60 s for clock drift
            return "'Expiration time' claim ('exp') is too far in the future"
    if isinstance(iat, (int, float)) and iat > now + 60:
        return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
    return None


@dataclass
class _Ctx:
    server: FakeGitHub
    op: schema.Operation
    params: dict[str, str]
    query: dict[str, Any]
    body: Any
    headers: dict[str, str]

    @property
    def path(self) -> str:
        # Concrete path for Link headers, rebuilt from the template.
        path = self.op.path
        for k, v in self.params.items():
            path = path.replace("{" + k + "}", v)
        return path


# (METHOD, template) -> FakeGitHub method.  Templates are checked against the
# index at startup, so a renamed path in a githubkit upgrade fails loudly.
_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/repos/{owner}/{repo}"): "_get_repo",
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref}"): "_get_git_ref",
    ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}"): "_get_git_commit",
    ("GET", "/user/repos"): "_list_user_repos",
    ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"): "_get_team_membership",
    ("GET", "/user"): "_get_authenticated_user",
    ("POST", "/repos/{owner}/{repo}/dispatches"): "_dispatch",
    ("GET", "/rate_limit"): "_rate_limit",
    ("GET", "/repos/{owner}/{repo}/contents/{path}"): "_get_content",
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"): "_create_status",
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses"): "_list_statuses",
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/status"): "_combined_status",
    ("POST", "/repos/{owner}/{repo}/issues"): "_create_issue",
    ("GET", "/repos/{owner}/{repo}/issues"): "_list_issues",
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}"): "_get_issue",
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): "_get_pull",
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"): "_update_issue",
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): "_list_comments",
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): "_create_comment",
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"): "_update_comment",
    ("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}"): "_delete_comment",
    ("POST", "/repos/{owner}/{repo}/deployments"): "_create_deployment",
    ("GET", "/repos/{owner}/{repo}/deployments"): "_list_deployments",
    ("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"): "_create_deployment_status",
    ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"): "_list_deployment_statuses",
    ("GET", "/repos/{owner}/{repo}/properties/values"): "_get_repo_properties",
    ("PATCH", "/repos/{owner}/{repo}/properties/values"): "_patch_repo_properties",
    ("GET", "/orgs/{org}/properties/values"): "_get_org_properties",
    ("PATCH", "/orgs/{org}/properties/values"): "_patch_org_properties",
    ("GET", "/orgs/{org}/properties/schema"): "_get_org_property_schema",
    ("PATCH", "/orgs/{org}/properties/schema"): "_patch_org_property_schema",
    ("GET", "/repos/{owner}/{repo}/installation"): "_get_repo_installation",
    ("GET", "/orgs/{org}/installation"): "_get_org_installation",
    ("POST", "/app/installations/{installation_id}/access_tokens"): "_create_installation_token",
}


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


def _make_handler(server: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 so httpx can keep connections alive, like against GitHub.
        protocol_version = "HTTP/1.1"
        server_version = "GitHub.com"
        sys_version = ""
        timeout = 30  # idle keep-alive connections must not pin threads forever

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep pytest output clean; server.requests is the log

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server._handle(self.command, self.path, headers, raw)
            if reply is None:  # ("disconnect",) fault
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            self._send(reply, headers)

        def _send(self, reply: _Reply, request_headers: dict[str, str]) -> None:
            out = dict(server._rate_headers())
            out.update(
                {
                    "X-GitHub-Media-Type": "github.v3; format=json",
                    "X-GitHub-Api-Version-Selected": request_headers.get("x-github-api-version", "2022-11-28"),
                    "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
                }
            )
            if reply.body is None or reply.status == 204:
                data = b""
            elif isinstance(reply.body, bytes):
                data = reply.body
            else:
                data = json.dumps(reply.body).encode()
                out["Content-Type"] = "application/json; charset=utf-8"
            status = reply.status
            if self.command == "GET" and status == 200:
                etag = f'W/"{hashlib.sha256(data).hexdigest()}"'
                out["ETag"] = etag
                out["Cache-Control"] = server.cache_control
                out["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
                if request_headers.get("if-none-match") == etag:
                    status, data = 304, b""  # conditional requests, as GitHub
            out.update(reply.headers)
            try:
                self.send_response(status)
                for k, v in out.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data and self.command != "HEAD":
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (e.g. a ("timeout", s) fault); nothing to do.
                self.close_connection = True

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler
