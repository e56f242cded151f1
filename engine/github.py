"""The GitHub seam: the one place a GitHub client is built, and every call the engine makes.

Built once, at the edge (``cli.py``), from the environment: a GitHub App installation
(``ENGINE_GITHUB_APP_ID`` + ``ENGINE_GITHUB_APP_PRIVATE_KEY``; the installation is looked
up per customer repository) or a plain token (``ENGINE_GITHUB_TOKEN``, else
``GITHUB_TOKEN``).  Timeouts are always set (githubkit's default is none).  Retries
honour ``Retry-After`` / ``x-ratelimit-reset`` with a cap; content-creating requests are
paced under GitHub's secondary limit (80 per minute).  In dry-run mode every write is
printed and none is made.  Tokens are never printed.  GitHub refusing the credentials
themselves (401, or 403 "Bad credentials") is a ``GitHubCredentialsError``, not a crash.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import os
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, TextIO

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import AuthCredentialError, GitHubException, RateLimitExceeded, RequestError, RequestFailed, RequestTimeout
from jwt.exceptions import PyJWTError
from githubkit.throttling import BaseThrottler
from githubkit.typing import RetryOption

from engine import provenance
from engine.errors import EngineError, InputError
from engine.untrusted import escape_inline

DEFAULT_TIMEOUT = 10.0
MUTATING = {"POST", "PATCH", "PUT", "DELETE"}
CREDENTIALS_HINT = ("check ENGINE_GITHUB_TOKEN / GITHUB_TOKEN (expired, revoked, or for another GitHub?), "
                    "or ENGINE_GITHUB_APP_ID and ENGINE_GITHUB_APP_PRIVATE_KEY")


class GitHubCredentialsError(EngineError):
    """GitHub refused the engine's credentials.  Exit 1; the message never contains them."""


def _github_message(exc: RequestFailed) -> str:
    try:
        message = exc.response.raw_response.json().get("message")
    except Exception:  # noqa: BLE001 - not JSON: GitHub's own error pages, a proxy
        message = None
    return message[:100] if isinstance(message, str) else ""


def credentials_refused(exc: BaseException) -> GitHubCredentialsError | None:
    """The error to raise when ``exc`` is GitHub refusing the credentials (401, or 403 "Bad credentials")."""
    if isinstance(exc, AuthCredentialError) or (isinstance(exc, RequestError) and isinstance(exc.exc, PyJWTError)):
        # an App private key that is not a key: githubkit fails to sign the App's token
        return GitHubCredentialsError("the GitHub App credentials cannot be used (ENGINE_GITHUB_APP_PRIVATE_KEY is not a valid key)",
                                      hint=CREDENTIALS_HINT)
    if not isinstance(exc, RequestFailed) or isinstance(exc, RateLimitExceeded):
        return None
    status, message = exc.response.status_code, _github_message(exc)
    if status == 401 or (status == 403 and "credentials" in message.lower()):
        said = f": {message}" if message else ""
        return GitHubCredentialsError(f"GitHub refused the engine's credentials ({status}{said}) on {exc.request.method} {exc.request.url.path}",
                                      hint=CREDENTIALS_HINT)
    return None


def _refused_credentials_are_errors(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (RequestError, AuthCredentialError) as exc:
            refused = credentials_refused(exc)
            if refused is None:
                raise
            raise refused from None

    return wrapper


class CappedRetry:
    """Retry rate limits (waiting what GitHub asks, up to a cap) and server errors / timeouts on reads.

    Writes are not retried here after a timeout or server error: GitHub may have applied
    them.  The feedback layer re-reads and retries them idempotently instead.
    """

    def __init__(self, max_wait: float = 60.0, rate_limit_retries: int = 2, server_retries: int = 3, backoff: float = 1.0):
        self.max_wait = max_wait
        self.rate_limit_retries = rate_limit_retries
        self.server_retries = server_retries
        self.backoff = backoff

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            wait = exc.retry_after.total_seconds() if exc.retry_after else self.max_wait
            if retry_count < self.rate_limit_retries and wait <= self.max_wait:
                return RetryOption(True, timedelta(seconds=max(wait, 0.0)))
            return RetryOption(False)
        method = getattr(getattr(exc, "request", None), "method", "GET")
        transient = isinstance(exc, RequestTimeout) or (isinstance(exc, RequestFailed) and exc.response.status_code >= 500)
        if transient and method not in MUTATING and retry_count < self.server_retries:
            return RetryOption(True, timedelta(seconds=min(self.backoff * (2**retry_count), self.max_wait)))
        return RetryOption(False)


class WritePacer(BaseThrottler):
    """At most ``per_minute`` mutating requests in any 60 s window, and bounded concurrency."""

    def __init__(self, per_minute: int = 80, max_concurrency: int = 10, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        self._writes: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._semaphore = threading.Semaphore(max_concurrency)

    def _pace(self, method: str) -> None:
        if method not in MUTATING:
            return
        with self._lock:
            now = self.clock()
            while self._writes and now - self._writes[0] >= 60:
                self._writes.popleft()
            if len(self._writes) >= self.per_minute:
                self.sleep(60 - (now - self._writes[0]))
                self._writes.popleft()
            self._writes.append(self.clock())

    @contextmanager
    def acquire(self, request: httpx.Request):
        with self._semaphore:
            self._pace(request.method)
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request):  # the engine is synchronous
        self._pace(request.method)
        yield


@dataclass
class Settings:
    """Where and how to reach GitHub; read from the environment by ``from_env``."""

    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    token: str | None = field(default=None, repr=False)  # never printed
    app_id: str | None = None
    app_private_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retry_wait: float = 60.0
    writes_per_minute: int = 80
    run_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return cls(
            api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            server_url=server,
            token=env.get("ENGINE_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or None,
            app_id=env.get("ENGINE_GITHUB_APP_ID") or None,
            app_private_key=env.get("ENGINE_GITHUB_APP_PRIVATE_KEY") or None,
            timeout=float(env.get("ENGINE_GITHUB_TIMEOUT", DEFAULT_TIMEOUT)),
            max_retry_wait=float(env.get("ENGINE_GITHUB_MAX_RETRY_WAIT", 60)),
            writes_per_minute=int(env.get("ENGINE_GITHUB_WRITES_PER_MINUTE", 80)),
            run_url=provenance.run_url(env),
        )

    @property
    def has_credentials(self) -> bool:
        """A token, or a GitHub App id with its private key."""
        return bool(self.token or (self.app_id and self.app_private_key))


@dataclass
class PlannedWrite:
    method: str
    path: str
    body: dict

    def describe(self) -> str:
        return f"{self.method} {self.path} {json.dumps(self.body, sort_keys=True)}"


@dataclass
class GitHubAPI:
    """The engine's GitHub calls.  Reads always happen; writes are skipped (and printed) in dry-run."""

    settings: Settings
    dry_run: bool = False
    out: TextIO = field(default=sys.stderr)
    planned: list[PlannedWrite] = field(default_factory=list)
    _clients: dict[str, GitHub] = field(default_factory=dict)

    # -- clients ---------------------------------------------------------

    def _new(self, auth) -> GitHub:
        return GitHub(auth, base_url=self.settings.api_url, timeout=self.settings.timeout,
                      auto_retry=CappedRetry(max_wait=self.settings.max_retry_wait),
                      throttler=WritePacer(self.settings.writes_per_minute), http_cache=False)

    def client(self, repository: str) -> GitHub:
        """A client authorized for ``owner/name`` (or an organization, ``owner``): the app's installation
        on it, or the token."""
        if repository in self._clients:
            return self._clients[repository]
        if self.settings.app_id and self.settings.app_private_key:
            app = self._new(AppAuthStrategy(self.settings.app_id, self.settings.app_private_key))
            owner, _, name = repository.partition("/")
            installation = (app.rest.apps.get_repo_installation(owner, name) if name else app.rest.apps.get_org_installation(owner)).parsed_data
            client = self._new(AppAuthStrategy(self.settings.app_id, self.settings.app_private_key).as_installation(installation.id))
        elif self.settings.token:
            client = self._new(TokenAuthStrategy(self.settings.token))
        else:
            raise InputError("no GitHub credentials", hint="set ENGINE_GITHUB_TOKEN (or GITHUB_TOKEN), or ENGINE_GITHUB_APP_ID and ENGINE_GITHUB_APP_PRIVATE_KEY")
        self._clients[repository] = client
        return client

    # -- reads -----------------------------------------------------------

    def file_name(self, repository: str, path: str, ref: str | None) -> str:
        """How messages name ``path`` of ``repository`` at ``ref``."""
        return f"{repository}/{path}" + (f"@{ref[:7]}" if ref else "")

    @_refused_credentials_are_errors
    def file_at(self, repository: str, path: str, ref: str | None) -> bytes | None:
        """A file's bytes at ``ref``, or None when it does not exist there."""
        owner, name = repository.split("/", 1)
        try:
            resp = self.client(repository).rest.repos.get_content(owner, name, path, ref=ref)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        data = resp.json()
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content") or "")

    @_refused_credentials_are_errors
    def default_branch_head(self, repository: str) -> tuple[str, str]:
        """(default branch, the commit it points at now)."""
        owner, name = repository.split("/", 1)
        gh = self.client(repository)
        try:
            branch = gh.rest.repos.get(owner, name).parsed_data.default_branch
            ref = gh.rest.git.get_ref(owner, name, f"heads/{branch}").json()
        except RequestFailed as exc:
            if exc.response.status_code in (404, 409):  # no such repository (for these credentials), or an empty one
                raise InputError(f"{repository} has no commit on its default branch, or the engine cannot see the repository "
                                 f"(GitHub answered {exc.response.status_code})",
                                 hint="check the repository name in the tenant record and that the App is installed on it") from None
            raise
        return branch, ref["object"]["sha"]

    def commit_time(self, repository: str, sha: str) -> str | None:
        """When ``sha`` was committed (its committer date, UTC ISO), or None when GitHub does not say (the run
        history's lead time leaves such a deployment out; never an error)."""
        owner, name = repository.split("/", 1)
        try:
            date = self.client(repository).rest.git.get_commit(owner, name, sha).json()["committer"]["date"]
        except Exception:  # noqa: BLE001 - best effort: a missing time only leaves this run out of lead time
            return None
        return date if isinstance(date, str) else None

    @_refused_credentials_are_errors
    def pull_request(self, repository: str, number: int) -> dict | None:
        """Pull request ``number`` of ``repository`` as GitHub returns it, or None when there is none."""
        owner, name = repository.split("/", 1)
        try:
            return self.client(repository).rest.pulls.get(owner, name, number).json()
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise

    def authenticated_login(self, repository: str) -> str | None:
        """The token's own login, or None for a GitHub App installation (GitHub answers 403 there)."""
        try:
            return self.client(repository).rest.users.get_authenticated().json()["login"]
        except RequestFailed as exc:
            if exc.response.status_code in (401, 403):
                return None
            raise

    @_refused_credentials_are_errors
    def custom_properties(self, repository: str) -> dict[str, Any]:
        owner, name = repository.split("/", 1)
        resp = self.client(repository).rest.repos.custom_properties_for_repos_get_repository_values(owner, name)
        return {p.property_name: p.value for p in resp.parsed_data}

    @_refused_credentials_are_errors
    def property_definitions(self, org: str) -> list[dict[str, Any]]:
        """The organization's custom property definitions, as GitHub returns them."""
        return self.client(org).rest.orgs.custom_properties_for_repos_get_organization_definitions(org).json()

    @_refused_credentials_are_errors
    def app_installation(self, repository: str) -> dict[str, Any] | None:
        """The GitHub App's installation on ``repository``, None when the App is not installed there.
        Raises ``InputError`` when the engine runs with a token (only the App's own credentials can ask)."""
        if not (self.settings.app_id and self.settings.app_private_key):
            raise InputError("the App installation can only be checked with the App's credentials",
                             hint="set ENGINE_GITHUB_APP_ID and ENGINE_GITHUB_APP_PRIVATE_KEY")
        owner, name = repository.split("/", 1)
        app = self._new(AppAuthStrategy(self.settings.app_id, self.settings.app_private_key))
        try:
            return app.rest.apps.get_repo_installation(owner, name).json()
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise

    @_refused_credentials_are_errors
    def comments(self, repository: str, number: int) -> list[dict]:
        owner, name = repository.split("/", 1)
        gh = self.client(repository)
        return [c.model_dump() if hasattr(c, "model_dump") else dict(c)
                for c in gh.rest.paginate(gh.rest.issues.list_comments, owner=owner, repo=name, issue_number=number, per_page=100)]

    @_refused_credentials_are_errors
    def deployments(self, repository: str, sha: str, environment: str) -> list[dict]:
        owner, name = repository.split("/", 1)
        resp = self.client(repository).rest.repos.list_deployments(owner, name, sha=sha, environment=environment, per_page=100)
        return resp.json()

    # -- writes ----------------------------------------------------------

    @_refused_credentials_are_errors
    def _write(self, repository: str, method: str, path: str, body: dict, call: Callable[[GitHub], Any]) -> Any:
        if self.dry_run:
            planned = PlannedWrite(method, path, body)
            self.planned.append(planned)
            self.out.write(f"[dry-run] would {escape_inline(planned.describe())}\n")  # bodies carry customer text
            return None
        return call(self.client(repository))

    def create_status(self, repository: str, sha: str, body: dict) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "POST", f"/repos/{repository}/statuses/{sha}", body,
                           lambda gh: gh.rest.repos.create_commit_status(owner, name, sha, data=body))

    def create_comment(self, repository: str, number: int, body: str) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "POST", f"/repos/{repository}/issues/{number}/comments", {"body": body},
                           lambda gh: gh.rest.issues.create_comment(owner, name, number, data={"body": body}))

    def update_comment(self, repository: str, comment_id: int, body: str) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "PATCH", f"/repos/{repository}/issues/comments/{comment_id}", {"body": body},
                           lambda gh: gh.rest.issues.update_comment(owner, name, comment_id, data={"body": body}))

    def create_deployment(self, repository: str, body: dict) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "POST", f"/repos/{repository}/deployments", body,
                           lambda gh: gh.rest.repos.create_deployment(owner, name, data=body))

    def create_deployment_status(self, repository: str, deployment_id: int, body: dict) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "POST", f"/repos/{repository}/deployments/{deployment_id}/statuses", body,
                           lambda gh: gh.rest.repos.create_deployment_status(owner, name, deployment_id, data=body))

    def set_custom_properties(self, repository: str, values: dict[str, Any]) -> Any:
        owner, name = repository.split("/", 1)
        body = {"properties": [{"property_name": k, "value": v} for k, v in sorted(values.items())]}
        return self._write(repository, "PATCH", f"/repos/{repository}/properties/values", body,
                           lambda gh: gh.rest.repos.custom_properties_for_repos_create_or_update_repository_values(owner, name, data=body))

    def set_property_definitions(self, org: str, definitions: list[dict[str, Any]]) -> Any:
        """Create or replace these definitions in the organization (one batch request)."""
        body = {"properties": definitions}
        return self._write(org, "PATCH", f"/orgs/{org}/properties/schema", body,
                           lambda gh: gh.rest.orgs.custom_properties_for_repos_create_or_update_organization_definitions(org, data=body))

    @_refused_credentials_are_errors
    def issues(self, repository: str, label: str, state: str = "open") -> list[dict]:
        owner, name = repository.split("/", 1)
        gh = self.client(repository)
        return [i.model_dump() for i in gh.rest.paginate(gh.rest.issues.list_for_repo, owner=owner, repo=name, labels=label,
                                                          state=state, per_page=100)]

    def create_issue(self, repository: str, body: dict) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "POST", f"/repos/{repository}/issues", body,
                           lambda gh: gh.rest.issues.create(owner, name, data=body))

    def update_issue(self, repository: str, number: int, body: dict) -> Any:
        owner, name = repository.split("/", 1)
        return self._write(repository, "PATCH", f"/repos/{repository}/issues/{number}", body,
                           lambda gh: gh.rest.issues.update(owner, name, number, data=body))
