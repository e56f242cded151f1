"""A stateful stand-in for Spacelift's GraphQL API, for tests.

It serves ``engine/spacelift/schema.graphql`` with graphql-core: a document that does not validate
against the schema, or variables that don't coerce to its types, is answered the way a GraphQL
server answers (``errors``) *and* recorded in ``server.violations``, so the test fails even when the
client swallows the error (the fixture checks after the test).

It keeps state (stacks, their environment variables and outputs, runs), authenticates like Spacelift
(``apiKeyUser`` exchanges the API key for a token that expires; every other request needs
``Authorization: Bearer <token>``, else 401), and injects faults: server errors (the request not
processed, or processed with its answer lost), rate limits (429 with ``Retry-After``) and tokens that
expire mid-run.  Runs move through Spacelift's states one step per read of the run (or on demand):
QUEUED → PREPARING → INITIALIZING → PLANNING → UNCONFIRMED (waits for runConfirm unless the stack
autodeploys) → CONFIRMED → APPLYING → FINISHED, or FAILED / DISCARDED.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from graphql import GraphQLError, build_schema, execute, parse, validate
from graphql.language import OperationDefinitionNode

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "engine" / "spacelift" / "schema.graphql"
KEY_ID = "test-key-id"
KEY_SECRET = "test-key-secret-not-real"
CHANGE_COUNTS = {"ADDED": ("addCount",), "CHANGED": ("changeCount",), "DELETED": ("deleteCount",), "REPLACED": ("addCount", "deleteCount")}


class Refused(Exception):
    """What Spacelift refuses with a GraphQL error (not a violation: a legitimate answer)."""


@dataclass
class RunPlan:
    """What the next runs of a stack do: the changes they plan, how they end, the outputs they leave."""

    changes: list[tuple[str, str]] = field(default_factory=list)  # (address, ADDED|CHANGED|DELETED|REPLACED)
    fail_in: str | None = None  # "PLANNING" or "APPLYING": the run fails there
    outputs: list[dict] = field(default_factory=list)  # [{"id", "value", "sensitive"}]
    hold: bool = False  # the run stays in PLANNING (a timeout)


@dataclass
class Fault:
    operation: str | None  # the operation's first field (stackCreate, stack, …); None: any but apiKeyUser
    status: int
    times: int
    after: bool = False  # process the request, then lose the answer
    retry_after: float | None = None


class FakeSpacelift:
    def __init__(self, *, token_ttl: float = 3600, clock: Callable[[], float] = time.time, auto_advance: bool = True):
        self.schema = build_schema(SCHEMA_FILE.read_text())
        self.token_ttl = token_ttl
        self.clock = clock
        self.auto_advance = auto_advance
        self.stacks: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}  # run id -> run
        self.plans: dict[str, RunPlan] = {}  # stack id -> what its runs do
        self.tokens: dict[str, float] = {}  # token -> valid until
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict]] = []  # (operation field, variables) of every executed request
        self.faults: list[Fault] = []
        self.exchanges = 0
        self.unauthorized = 0  # requests answered 401
        self._expire_after: int | None = None
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeSpacelift":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, payload, headers = fake._handle(self.path, dict(self.headers.items()), body)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "text/html" if isinstance(payload, bytes) else "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                fake.violations.append(f"GET {self.path}: Spacelift's API is POST /graphql")
                self.send_response(405)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSpacelift":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what tests arrange and inspect --

    def env(self) -> dict[str, str]:
        return {"SPACELIFT_API_KEY_ENDPOINT": self.endpoint, "SPACELIFT_API_KEY_ID": KEY_ID, "SPACELIFT_API_KEY_SECRET": KEY_SECRET}

    def inject(self, operation: str | None, status: int = 502, *, times: int = 1, after: bool = False, retry_after: float | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(operation, status, times, after, retry_after))

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as if it had expired early)."""
        with self._lock:
            self.tokens.clear()

    def expire_tokens_after(self, calls: int) -> None:
        """The tokens in use stop working after ``calls`` more authenticated requests (a token expiring mid-run)."""
        with self._lock:
            self._expire_after = calls

    def plan(self, stack_id: str, plan: RunPlan) -> None:
        self.plans[stack_id] = plan

    def edit_stack(self, stack_id: str, **fields: Any) -> None:
        """A person changes the stack in Spacelift's UI (no API call recorded)."""
        with self._lock:
            self.stacks[stack_id].update(fields)

    def mutations(self) -> list[tuple[str, dict]]:
        return [(name, v) for name, v in self.calls if name in self._mutation_fields and name != "apiKeyUser"]

    def variable(self, stack_id: str, name: str) -> str | None:
        """The value of a stack's environment variable as Spacelift holds it (write-only ones too)."""
        element = self.stacks[stack_id]["_config"].get(name)
        return element["_value"] if element else None

    def advance(self, run_id: str, steps: int = 1) -> None:
        with self._lock:
            for _ in range(steps):
                self._step(self.runs[run_id])

    # -- HTTP --

    @property
    def _mutation_fields(self) -> set[str]:
        return set(self.schema.mutation_type.fields)

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        headers = {k.lower(): v for k, v in headers.items()}
        if path.rstrip("/") != "/graphql":
            self.violations.append(f"POST {path}: Spacelift's API is POST /graphql")
            return 404, {"errors": [{"message": "not found"}]}, {}
        try:
            request = json.loads(body)
            document = parse(request["query"])
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            self.violations.append(f"unparsable request: {exc}")
            return 400, {"errors": [{"message": f"bad request: {exc}"}]}, {}
        problems = validate(self.schema, document)
        if problems:
            self.violations.append(f"document does not validate against schema.graphql: {'; '.join(p.message for p in problems)}")
            return 200, {"errors": [{"message": p.message} for p in problems]}, {}
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        first = operations[0].selection_set.selections[0].name.value if operations else ""
        variables = request.get("variables") or {}
        with self._lock:
            if first != "apiKeyUser":
                token = headers.get("authorization", "").removeprefix("Bearer ")
                if self.tokens.get(token, 0) <= self.clock():
                    self.unauthorized += 1
                    return 401, {"errors": [{"message": "unauthorized"}]}, {}
                if self._expire_after is not None:
                    self._expire_after -= 1
                    if self._expire_after < 0:
                        self._expire_after = None
                        self.tokens.clear()
                        self.unauthorized += 1
                        return 401, {"errors": [{"message": "unauthorized"}]}, {}
            fault = self._fault(first)
            if fault is not None and not fault.after:
                return self._fault_reply(fault)
            self.calls.append((first, variables))
            result = execute(self.schema, document, root_value=_Root(self), variable_values=variables,
                             operation_name=request.get("operationName"))
        for error in result.errors or []:
            if not isinstance(error.original_error, Refused):
                self.violations.append(f"{first}: {error.message}")
        if fault is not None:
            return self._fault_reply(fault)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [{"message": e.message, "path": e.path} for e in result.errors]
        return 200, answer, {}

    def _fault(self, operation: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.operation == operation or (fault.operation is None and operation != "apiKeyUser")):
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _fault_reply(fault: Fault) -> tuple[int, Any, dict[str, str]]:
        if fault.status == 429:
            headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return 429, {"errors": [{"message": "rate limit exceeded"}]}, headers
        return fault.status, f"<html><body>{fault.status} Bad Gateway</body></html>".encode(), {}

    # -- state --

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def _step(self, run: dict) -> None:
        if run["_path"]:
            self._enter(run, run["_path"].pop(0))

    def _enter(self, run: dict, state: str) -> None:
        run["state"] = state
        terminal = state in ("FINISHED", "FAILED", "DISCARDED", "STOPPED", "CANCELED")
        run["finished"] = terminal
        run["history"].append({"state": state, "timestamp": int(self.clock()), "terminal": terminal, "note": None,
                               "hasLogs": True, "stateVersion": len(run["history"]) + 1, "username": None})
        if state == "FINISHED" and run["type"] == "TRACKED":
            stack = self.stacks.get(run["_stack"])
            if stack is not None:
                stack["_outputs"] = list(run["_plan"].outputs)

    def trigger(self, stack: dict, commit: str | None, run_type: str) -> dict:
        plan = self.plans.get(stack["id"], RunPlan())
        delta = {"addCount": 0, "changeCount": 0, "deleteCount": 0, "resources": len(plan.changes)}
        for _, change in plan.changes:
            for key in CHANGE_COUNTS.get(change, ()):
                delta[key] += 1
        path = ["PREPARING", "INITIALIZING", "PLANNING"]
        if plan.hold:
            pass
        elif plan.fail_in == "PLANNING":
            path.append("FAILED")
        elif run_type == "PROPOSED" or not plan.changes:
            path.append("FINISHED")
        elif stack["autodeploy"]:
            path += ["APPLYING", "FAILED" if plan.fail_in == "APPLYING" else "FINISHED"]
        else:
            path.append("UNCONFIRMED")
        run = {"id": self.new_id("01RUN"), "type": run_type, "state": "QUEUED", "title": "triggered by the engine",
               "branch": stack["branch"], "createdAt": int(self.clock()), "triggeredBy": "api-key", "needsApproval": False,
               "finished": False, "commit": {"hash": commit or "0" * 40, "authorLogin": None, "authorName": None, "message": None},
               "delta": delta, "history": [], "_path": path, "_plan": plan, "_stack": stack["id"]}
        self._enter(run, "QUEUED")
        self.runs[run["id"]] = run
        stack["_runs"].append(run["id"])
        return run


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _vendor(config: dict | None) -> dict:
    config = config or {}
    if config.get("pulumi"):
        return {"__typename": "StackConfigVendorPulumi", **config["pulumi"]}
    kind, settings = ("opentofu", config["opentofu"]) if config.get("opentofu") else ("terraform", config.get("terraform") or {})
    return {"__typename": "StackConfigVendorOpenTofu" if kind == "opentofu" else "StackConfigVendorTerraform",
            "version": settings.get("version"), "workflowTool": settings.get("workflowTool"), "workspace": settings.get("workspace"),
            "useSmartSanitization": bool(settings.get("useSmartSanitization")),
            "externalStateAccessEnabled": bool(settings.get("externalStateAccessEnabled"))}


_LISTS = ("labels", "beforeInit", "afterInit", "beforePlan", "afterPlan", "beforeApply", "afterApply")


class _Root:
    """Resolvers for Query and Mutation (graphql-core calls a root attribute with (info, **arguments))."""

    def __init__(self, fake: FakeSpacelift):
        self.fake = fake

    # -- reads --

    def stack(self, info: Any, id: str) -> dict | None:
        stack = self.fake.stacks.get(id)
        return self._view(stack) if stack else None

    def stacks(self, info: Any) -> list[dict]:
        return [self._view(s) for s in self.fake.stacks.values()]

    def _view(self, stack: dict) -> dict:
        fake = self.fake

        def run(info: Any, id: str) -> dict | None:
            r = fake.runs.get(id)
            if r is None or r["_stack"] != stack["id"]:
                return None
            if fake.auto_advance:
                fake._step(r)
            return self._run_view(r)

        def runs(info: Any, before: str | None = None, proposed: bool = False) -> list[dict]:
            chosen = [fake.runs[i] for i in reversed(stack["_runs"]) if (fake.runs[i]["type"] == "PROPOSED") == proposed]
            return [self._run_view(r) for r in chosen]

        return {**{k: v for k, v in stack.items() if not k.startswith("_")},
                "vendorConfig": _vendor(stack["_vendor"]),
                "workerPool": {"id": stack["_workerPool"]} if stack["_workerPool"] else None,
                "runtimeConfig": [{"context": None, "element": {k: v for k, v in e.items() if not k.startswith("_")}}
                                  for e in stack["_config"].values()],
                "outputs": list(stack["_outputs"]),
                "run": run, "runs": runs, "proposedRuns": lambda info, before=None: runs(info, before, proposed=True)}

    def _run_view(self, run: dict) -> dict:
        view = {k: v for k, v in run.items() if not k.startswith("_")}
        changes = [{"resources": [{"address": a, "previousAddress": None, "metadata": {"type": t}} for a, t in run["_plan"].changes]}]
        planned = run["state"] not in ("QUEUED", "PREPARING", "INITIALIZING", "PLANNING")  # a plan exists once planning is over
        view["changesV3"] = lambda info, input: changes if planned else []
        return view

    # -- mutations --

    def apiKeyUser(self, info: Any, id: str, secret: str) -> dict | None:  # noqa: N802 - GraphQL's name
        if id != KEY_ID or secret != KEY_SECRET:
            return None
        self.fake.exchanges += 1
        token = f"fake-token-{self.fake.new_id('')}"
        valid_until = int(self.fake.clock() + self.fake.token_ttl)
        self.fake.tokens[token] = valid_until
        return {"id": id, "jwt": token, "validUntil": valid_until}

    def stackCreate(self, info: Any, input: dict, manageState: bool, stackObjectID: str | None = None, slug: str | None = None) -> dict:  # noqa: N802
        stack_id = slug or _slug(input["name"])
        if stack_id in self.fake.stacks:
            raise Refused(f"stack with ID {stack_id} already exists")
        stack = {"id": stack_id, "state": "NONE", "deleting": False, "managesStateFile": manageState,
                 "_config": {}, "_outputs": [], "_runs": []}
        self._apply(stack, input)
        self.fake.stacks[stack_id] = stack
        return self._view(stack)

    def stackUpdate(self, info: Any, id: str, input: dict) -> dict:  # noqa: N802
        stack = self._need(id)
        self._apply(stack, input)
        return self._view(stack)

    def stackDelete(self, info: Any, id: str, destroyResources: bool | None = None) -> dict | None:  # noqa: N802
        stack = self.fake.stacks.pop(id, None)
        return self._view(stack) if stack else None

    def stackConfigAdd(self, info: Any, stack: str, config: dict) -> dict:  # noqa: N802
        target = self._need(stack)
        value = config["value"]
        element = {"id": config["id"], "type": config["type"], "writeOnly": config["writeOnly"], "description": config.get("description"),
                   "value": None if config["writeOnly"] else value, "checksum": hashlib.sha256(value.encode()).hexdigest(),
                   "createdAt": int(self.fake.clock()), "runtime": False, "_value": value}
        target["_config"][config["id"]] = element
        return {k: v for k, v in element.items() if not k.startswith("_")}

    def stackConfigDelete(self, info: Any, stack: str, id: str) -> dict | None:  # noqa: N802
        element = self._need(stack)["_config"].pop(id, None)
        return {k: v for k, v in element.items() if not k.startswith("_")} if element else None

    def runTrigger(self, info: Any, stack: str, commitSha: str | None = None, runType: str | None = None, runtimeConfig: dict | None = None) -> dict:  # noqa: N802
        return self._run_view(self.fake.trigger(self._need(stack), commitSha, runType or "TRACKED"))

    def runConfirm(self, info: Any, stack: str, run: str | None = None, note: str | None = None) -> dict:  # noqa: N802
        r = self._need_run(stack, run)
        if r["state"] != "UNCONFIRMED":
            raise Refused(f"run {r['id']} is {r['state']}, not UNCONFIRMED")
        self.fake._enter(r, "CONFIRMED")
        plan = r["_plan"]
        r["_path"] = ["APPLYING", "FAILED" if plan.fail_in == "APPLYING" else "FINISHED"]
        return self._run_view(r)

    def runDiscard(self, info: Any, stack: str, run: str | None = None, note: str | None = None) -> dict:  # noqa: N802
        r = self._need_run(stack, run)
        if r["state"] != "UNCONFIRMED":
            raise Refused(f"run {r['id']} is {r['state']}, not UNCONFIRMED")
        r["_path"] = []
        self.fake._enter(r, "DISCARDED")
        return self._run_view(r)

    # -- helpers --

    def _need(self, stack_id: str) -> dict:
        stack = self.fake.stacks.get(stack_id)
        if stack is None:
            raise Refused(f"stack {stack_id} not found")
        return stack

    def _need_run(self, stack_id: str, run_id: str | None) -> dict:
        self._need(stack_id)
        r = self.fake.runs.get(run_id or "")
        if r is None or r["_stack"] != stack_id:
            raise Refused(f"run {run_id} not found")
        return r

    @staticmethod
    def _apply(stack: dict, data: dict) -> None:
        for key in ("name", "description", "space", "namespace", "repository", "branch", "projectRoot", "runnerImage"):
            stack[key] = data.get(key)
        stack["space"] = stack["space"] or "root"
        stack["namespace"] = stack["namespace"] or ""
        stack["administrative"] = data["administrative"]
        stack["autodeploy"] = data["autodeploy"]
        for key in _LISTS:
            stack[key] = list(data.get(key) or [])
        stack["_vendor"] = data.get("vendorConfig")
        stack["_workerPool"] = data.get("workerPool")
