"""The Spacelift API client: typed methods over Spacelift's GraphQL API, shaped like githubkit.

Built once at the edge (``SpaceliftAPI(credentials)``, a context manager), with

* **auth separate from transport**: ``ApiKeyAuth`` (an ``httpx.Auth``) exchanges the API key for a
  token with the ``apiKeyUser`` mutation, keeps it until shortly before ``validUntil``, and exchanges
  again when Spacelift answers 401 (a token that expired mid-run);
* **a timeout always set** and an ``httpx`` transport tests can replace;
* **retries**: reads retry server errors (5xx), rate limits (429, waiting what ``Retry-After`` asks, up
  to a cap) and dropped connections with exponential backoff.  Writes are never retried blindly: a
  write whose answer was lost (5xx, timeout) may have happened, so the client re-reads first — a
  stack created by the lost request is adopted instead of created twice, a run triggered by it is
  found again instead of triggered twice.  A 429 means "not processed": that write is retried.
* **every document validated** against ``schema.graphql`` (gql, locally) before it is sent.

Errors are ``SpaceliftError`` (an ``OperationError``, exit 1) with a message for a person; the API key
secret and tokens never appear in one.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (TransportConnectionFailed, TransportProtocolError, TransportQueryError,
                                      TransportServerError)
from gql.transport.httpx import HTTPXTransport
from graphql import GraphQLError

from engine.errors import OperationError
from engine.spacelift.settings import Credentials

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
USER_AGENT = "managed-infra-engine"
TOKEN_MARGIN_S = 60  # exchange again this long before the token's validUntil


class SpaceliftError(OperationError):
    """Spacelift refused a request or could not be reached (after retries)."""


class RetryableError(Exception):
    """A failed request that may be tried again: 5xx, 429, a dropped connection or a timeout."""

    def __init__(self, reason: str, *, retry_after: float | None = None, processed_maybe: bool = True):
        super().__init__(reason)
        self.retry_after = retry_after
        self.processed_maybe = processed_maybe  # False for 429: Spacelift did not process it


@dataclass(frozen=True)
class Retry:
    """How the client retries: attempts per request, exponential backoff, and the longest wait it accepts."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    max_wait_s: float = 60.0  # a Retry-After longer than this fails the request instead

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait_s)
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)


# -- typed results ---------------------------------------------------------------------------------

@dataclass
class ConfigElement:
    id: str
    value: str | None
    write_only: bool
    checksum: str
    description: str | None

    @classmethod
    def parse(cls, data: dict) -> "ConfigElement":
        return cls(id=data["id"], value=data.get("value"), write_only=bool(data.get("writeOnly")),
                   checksum=data.get("checksum") or "", description=data.get("description"))


@dataclass
class Stack:
    id: str
    name: str
    fields: dict[str, Any]  # the StackInput view of the stack (what stackUpdate takes), as read
    labels: list[str]
    config: dict[str, ConfigElement] = field(default_factory=dict)  # the stack's own environment variables
    state: str = ""
    deleting: bool = False

    @classmethod
    def parse(cls, data: dict) -> "Stack":
        vendor = data.get("vendorConfig") or {}
        kind = vendor.get("__typename")
        vendor_input: dict | None = None
        if kind == "StackConfigVendorPulumi":
            vendor_input = {"pulumi": {"loginURL": vendor.get("loginURL"), "stackName": vendor.get("stackName")}}
        elif kind in ("StackConfigVendorTerraform", "StackConfigVendorOpenTofu"):
            key = "terraform" if kind == "StackConfigVendorTerraform" else "opentofu"
            vendor_input = {key: {"version": vendor.get("version"), "workflowTool": vendor.get("workflowTool")}}
        fields = {
            "name": data["name"], "description": data.get("description"), "space": data.get("space"),
            "namespace": data.get("namespace"), "repository": data.get("repository"), "branch": data.get("branch"),
            "projectRoot": data.get("projectRoot") or None, "administrative": bool(data.get("administrative")),
            "autodeploy": bool(data.get("autodeploy")), "labels": list(data.get("labels") or []),
            "runnerImage": data.get("runnerImage"), "vendorConfig": vendor_input,
            "workerPool": (data.get("workerPool") or {}).get("id"),
            **{hook: list(data.get(hook) or []) for hook in HOOKS},
        }
        config = {}
        for item in data.get("runtimeConfig") or []:
            if item.get("context") is None and item["element"]["type"] == "ENVIRONMENT_VARIABLE":
                element = ConfigElement.parse(item["element"])
                config[element.id] = element
        return cls(id=data["id"], name=data["name"], fields=fields, labels=fields["labels"], config=config,
                   state=data.get("state") or "", deleting=bool(data.get("deleting")))


HOOKS = ("beforeInit", "afterInit", "beforePlan", "afterPlan", "beforeApply", "afterApply")


@dataclass
class ResourceChange:
    address: str
    change: str  # ADDED | CHANGED | DELETED | REPLACED | MOVED | …
    previous_address: str | None = None


@dataclass
class Run:
    id: str
    state: str
    type: str = "TRACKED"
    commit: str | None = None
    created_at: int = 0
    finished: bool = False
    delta: dict[str, int] | None = None
    history: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, data: dict) -> "Run":
        return cls(id=data["id"], state=data["state"], type=data.get("type") or "TRACKED",
                   commit=(data.get("commit") or {}).get("hash"), created_at=int(data.get("createdAt") or 0),
                   finished=bool(data.get("finished")), delta=data.get("delta"), history=list(data.get("history") or []))


@dataclass(frozen=True)
class Output:
    id: str
    value: str
    sensitive: bool


# -- documents (every one validated against schema.graphql) ------------------------------------------

_STACK_FIELDS = """
  id name description space namespace repository branch projectRoot administrative autodeploy labels runnerImage
  beforeInit afterInit beforePlan afterPlan beforeApply afterApply state deleting
  workerPool { id }
  vendorConfig {
    __typename
    ... on StackConfigVendorTerraform { version workflowTool }
    ... on StackConfigVendorOpenTofu { version workflowTool }
    ... on StackConfigVendorPulumi { loginURL stackName }
  }
  runtimeConfig { context { id } element { id type value writeOnly checksum description } }
"""
_RUN_FIELDS = "id type state createdAt finished commit { hash } delta { addCount changeCount deleteCount resources }"

DOCUMENTS: dict[str, str] = {
    "apiKeyUser": "mutation ApiKeyUser($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt validUntil } }",
    "stacks": f"query Stacks {{ stacks {{ {_STACK_FIELDS} }} }}",
    "stack": f"query Stack($id: ID!) {{ stack(id: $id) {{ {_STACK_FIELDS} }} }}",
    "stackCreate": "mutation StackCreate($input: StackInput!, $manageState: Boolean!, $slug: String) "
                   "{ stackCreate(input: $input, manageState: $manageState, slug: $slug) { id } }",
    "stackUpdate": "mutation StackUpdate($id: ID!, $input: StackInput!) { stackUpdate(id: $id, input: $input) { id } }",
    "stackDelete": "mutation StackDelete($id: ID!, $destroyResources: Boolean) { stackDelete(id: $id, destroyResources: $destroyResources) { id } }",
    "stackConfigAdd": "mutation StackConfigAdd($stack: ID!, $config: ConfigInput!) { stackConfigAdd(stack: $stack, config: $config) { id } }",
    "stackConfigDelete": "mutation StackConfigDelete($stack: ID!, $id: ID!) { stackConfigDelete(stack: $stack, id: $id) { id } }",
    "runTrigger": "mutation RunTrigger($stack: ID!, $sha: String, $type: RunType) "
                  f"{{ runTrigger(stack: $stack, commitSha: $sha, runType: $type) {{ {_RUN_FIELDS} }} }}",
    "runConfirm": "mutation RunConfirm($stack: ID!, $run: ID!, $note: String) { runConfirm(stack: $stack, run: $run, note: $note) { id state } }",
    "runDiscard": "mutation RunDiscard($stack: ID!, $run: ID!, $note: String) { runDiscard(stack: $stack, run: $run, note: $note) { id state } }",
    "run": f"query Run($stack: ID!, $run: ID!) {{ stack(id: $stack) {{ id run(id: $run) {{ {_RUN_FIELDS} "
           "history { state timestamp terminal note } } } }",
    "runs": f"query Runs($stack: ID!) {{ stack(id: $stack) {{ id runs {{ {_RUN_FIELDS} }} proposedRuns {{ {_RUN_FIELDS} }} }} }}",
    "runChanges": "query RunChanges($stack: ID!, $run: ID!) { stack(id: $stack) { id run(id: $run) { id "
                  "changesV3(input: {}) { resources { address previousAddress metadata { type } } } } } }",
    "outputs": "query Outputs($stack: ID!) { stack(id: $stack) { id outputs { id value sensitive } } }",
}
MUTATIONS = {name for name, text in DOCUMENTS.items() if text.startswith("mutation")}


def schema_text() -> str:
    return SCHEMA_FILE.read_text()


# -- auth ---------------------------------------------------------------------------------------------

class ApiKeyAuth(httpx.Auth):
    """API key → token (``apiKeyUser``), cached until ``TOKEN_MARGIN_S`` before it expires; a 401 exchanges again once."""

    def __init__(self, exchange: Callable[[], tuple[str, int]], clock: Callable[[], float] = time.time):
        self._exchange = exchange
        self._clock = clock
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0  # how often the key was exchanged (tests, and a hint in errors)

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._valid_until - TOKEN_MARGIN_S:
                self._token, self._valid_until = self._exchange()
                self.exchanges += 1
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # expired or revoked before validUntil: one new token, one more try
            self.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request


# -- the client ---------------------------------------------------------------------------------------

class SpaceliftAPI:
    """Spacelift's API as typed methods.  Use as a context manager, or call ``close``."""

    def __init__(self, credentials: Credentials, *, timeout: float = 30.0, retry: Retry = Retry(),
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.credentials = credentials
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        schema = schema_text()
        extra = {"transport": transport} if transport is not None else {}
        headers = {"User-Agent": USER_AGENT}
        # gql reads the body before the status: a 429 or 503 that carries GraphQL errors would pass for a refusal.
        extra["event_hooks"] = {"response": [self._remember_status]}
        self._status: int | None = None
        # The exchange has its own client: it must not carry (or wait for) the token it is getting.
        self._login = Client(schema=schema, transport=HTTPXTransport(credentials.graphql_url, timeout=timeout, headers=headers, **extra))
        self.auth = ApiKeyAuth(self._exchange, clock=clock)
        self._transport = HTTPXTransport(credentials.graphql_url, timeout=timeout, headers=headers, auth=self.auth, **extra)
        self._client = Client(schema=schema, transport=self._transport)
        self._session = None
        self._login_session = None
        self._lock = threading.Lock()  # one request at a time on the shared session
        self.requests: list[str] = []  # operation names sent, in order (tests count mutations with it)

    # -- lifecycle --

    def __enter__(self) -> "SpaceliftAPI":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client, attr in ((self._client, "_session"), (self._login, "_login_session")):
            if getattr(self, attr) is not None:
                client.close_sync()
                setattr(self, attr, None)

    # -- transport --

    def _exchange(self) -> tuple[str, int]:
        if self._login_session is None:
            self._login_session = self._login.connect_sync()
        data = self._send(self._login_session, "apiKeyUser", {"id": self.credentials.key_id, "secret": self.credentials.secret},
                          transport=self._login.transport)
        user = data.get("apiKeyUser")
        if not user:
            raise SpaceliftError("Spacelift refused the API key (apiKeyUser returned no user)",
                                 hint="check SPACELIFT_API_KEY_ID and SPACELIFT_API_KEY_SECRET, and that the key is not deleted")
        return user["jwt"], int(user["validUntil"])

    def _remember_status(self, response: httpx.Response) -> None:
        self._status = response.status_code

    def _send(self, session: Any, name: str, variables: dict[str, Any], transport: HTTPXTransport) -> dict:
        """One HTTP request; a failure that may succeed if tried again is a ``RetryableError``."""
        self.requests.append(name)
        self._status = None
        request = GraphQLRequest(DOCUMENTS[name], variable_values=variables, operation_name=None)
        try:
            return session.execute(request)
        except TransportServerError as exc:
            code = exc.code or 0
            if code == 429 or code >= 500:
                retry_after = _retry_after(transport.response_headers) if code == 429 else None
                raise RetryableError(f"HTTP {code}", retry_after=retry_after, processed_maybe=code != 429) from None
            if code == 401:
                raise SpaceliftError("Spacelift refused the token exchanged for the API key (HTTP 401)",
                                     hint="the API key may lack access, or was deleted") from None
            raise SpaceliftError(f"Spacelift answered HTTP {code} on {name}") from None
        except (TransportConnectionFailed, httpx.TimeoutException, httpx.TransportError) as exc:
            if isinstance(exc.__cause__, (SpaceliftError, RetryableError)):  # raised by the token exchange inside the auth flow
                raise exc.__cause__ from None
            raise RetryableError(f"no answer ({type(exc).__name__})") from None
        except TransportQueryError as exc:
            if self._status is not None and (self._status == 429 or self._status >= 500):
                retry_after = _retry_after(transport.response_headers) if self._status == 429 else None
                raise RetryableError(f"HTTP {self._status}", retry_after=retry_after, processed_maybe=self._status != 429) from None
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in (exc.errors or [])) or str(exc)
            raise SpaceliftError(f"Spacelift refused {name}: {messages}") from None
        except TransportProtocolError as exc:
            raise SpaceliftError(f"Spacelift's answer to {name} was not GraphQL: {str(exc)[:200]}") from None
        except GraphQLError as exc:  # the document does not validate against schema.graphql: a bug in the engine
            raise SpaceliftError(f"internal error: {name} does not match schema.graphql: {exc.message}") from None

    def _call(self, name: str, variables: dict[str, Any] | None = None) -> dict:
        """A request with retries for reads; writes go through ``_write``."""
        last = ""
        for attempt in range(self.retry.attempts):
            try:
                with self._lock:
                    if self._session is None:
                        self._session = self._client.connect_sync()
                    return self._send(self._session, name, variables or {}, self._transport)
            except RetryableError as exc:
                last = str(exc)
                if name in MUTATIONS and exc.processed_maybe:
                    raise  # the write may have happened: the caller re-reads before trying again
                if exc.retry_after is not None and exc.retry_after > self.retry.max_wait_s:
                    raise SpaceliftError(f"Spacelift rate limit: {name} may be retried only after {exc.retry_after:.0f} s") from None
                if attempt + 1 < self.retry.attempts:
                    self._sleep(self.retry.delay(attempt, exc.retry_after))
        raise SpaceliftError(f"Spacelift did not answer {name} after {self.retry.attempts} attempts (last: {last})",
                             hint="Spacelift may be down or rate limiting this key; the next run retries")

    def _write(self, name: str, variables: dict[str, Any], happened: Callable[[], Any | None]) -> Any:
        """A write whose answer may be lost: after a 5xx or a timeout, ``happened()`` re-reads; what it finds
        (not ``None``) is the write's result, else the write is sent again."""
        last = ""
        for attempt in range(self.retry.attempts):
            try:
                return self._call(name, variables)
            except RetryableError as exc:
                found = happened()
                if found is not None:
                    return found
                if attempt + 1 < self.retry.attempts:
                    self._sleep(self.retry.delay(attempt, None))
                last = str(exc)
        raise SpaceliftError(f"Spacelift did not complete {name} after {self.retry.attempts} attempts (last: {last})")

    # -- stacks --

    def stacks(self) -> list[Stack]:
        return [Stack.parse(s) for s in self._call("stacks")["stacks"]]

    def stack(self, stack_id: str) -> Stack | None:
        data = self._call("stack", {"id": stack_id})["stack"]
        return Stack.parse(data) if data else None

    def create_stack(self, slug: str, stack_input: dict[str, Any]) -> str:
        """Create the stack with ID ``slug``; a create whose answer was lost is found by its ID, never repeated."""
        return self._write("stackCreate", {"input": stack_input, "manageState": False, "slug": slug},
                           lambda: {"stackCreate": {"id": slug}} if self.stack(slug) is not None else None)["stackCreate"]["id"]

    def update_stack(self, stack_id: str, stack_input: dict[str, Any]) -> None:
        # the same input again is the same update: re-reading adds nothing, sending again is safe
        self._write("stackUpdate", {"id": stack_id, "input": stack_input}, lambda: None)

    def delete_stack(self, stack_id: str) -> None:
        def gone() -> Any | None:
            stack = self.stack(stack_id)
            return {} if stack is None or stack.deleting else None

        self._write("stackDelete", {"id": stack_id, "destroyResources": False}, gone)

    def set_variable(self, stack_id: str, name: str, value: str, *, write_only: bool, description: str) -> None:
        """Add or replace an environment variable of the stack (Spacelift replaces by ID: sending it again is safe)."""
        config = {"id": name, "type": "ENVIRONMENT_VARIABLE", "value": value, "writeOnly": write_only, "description": description}
        self._write("stackConfigAdd", {"stack": stack_id, "config": config}, lambda: None)

    def delete_variable(self, stack_id: str, name: str) -> None:
        def gone() -> Any | None:
            stack = self.stack(stack_id)
            return {} if stack is None or name not in stack.config else None

        self._write("stackConfigDelete", {"stack": stack_id, "id": name}, gone)

    # -- runs --

    def trigger_run(self, stack_id: str, commit: str | None, run_type: str) -> Run:
        """Trigger a run; one whose answer was lost is found again among the stack's runs (never triggered twice)."""
        before = {r.id for r in self.runs(stack_id)}

        def found() -> dict | None:
            new = [r for r in self.runs(stack_id) if r.id not in before and r.type == run_type and (commit is None or r.commit == commit)]
            return {"runTrigger": {"id": new[0].id, "state": new[0].state, "type": new[0].type}} if new else None

        return Run.parse(self._write("runTrigger", {"stack": stack_id, "sha": commit, "type": run_type}, found)["runTrigger"])

    def runs(self, stack_id: str) -> list[Run]:
        stack = self._call("runs", {"stack": stack_id})["stack"]
        if stack is None:
            return []
        return [Run.parse(r) for r in (stack.get("runs") or []) + (stack.get("proposedRuns") or [])]

    def run(self, stack_id: str, run_id: str) -> Run | None:
        stack = self._call("run", {"stack": stack_id, "run": run_id})["stack"]
        run = (stack or {}).get("run")
        return Run.parse(run) if run else None

    def confirm_run(self, stack_id: str, run_id: str, note: str) -> None:
        def moved_on() -> Any | None:
            run = self.run(stack_id, run_id)
            return {} if run is not None and run.state != "UNCONFIRMED" else None

        self._write("runConfirm", {"stack": stack_id, "run": run_id, "note": note}, moved_on)

    def discard_run(self, stack_id: str, run_id: str, note: str) -> None:
        def moved_on() -> Any | None:
            run = self.run(stack_id, run_id)
            return {} if run is not None and run.state != "UNCONFIRMED" else None

        self._write("runDiscard", {"stack": stack_id, "run": run_id, "note": note}, moved_on)

    def run_changes(self, stack_id: str, run_id: str) -> list[ResourceChange]:
        stack = self._call("runChanges", {"stack": stack_id, "run": run_id})["stack"]
        run = (stack or {}).get("run") or {}
        return [ResourceChange(address=r["address"], change=(r.get("metadata") or {}).get("type") or "", previous_address=r.get("previousAddress"))
                for changes in run.get("changesV3") or [] for r in changes.get("resources") or []]

    def outputs(self, stack_id: str) -> list[Output]:
        stack = self._call("outputs", {"stack": stack_id})["stack"]
        return [Output(o["id"], o["value"], bool(o["sensitive"])) for o in (stack or {}).get("outputs") or []]


def _retry_after(headers: httpx.Headers | None) -> float | None:
    value = (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def checksum(value: str) -> str:
    """What a write-only variable's checksum is compared with (see README.md: an assumption about Spacelift)."""
    return hashlib.sha256(value.encode()).hexdigest()
