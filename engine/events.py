"""Turn a GitHub event into an engine run request.  Everything in an event is untrusted.

Which repository a customer's files are read from and where feedback goes are taken
from the tenant record, never from the event; the event only names the customer,
the commit, the pull request and the mode, and each is checked here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from engine.config import CUSTOMER_ID_PATTERN, ENVIRONMENT_PATTERN, REPOSITORY_PATTERN
from engine.errors import ConfigError, InputError, Problem

MAX_EVENT_BYTES = 1024 * 1024  # real payloads are a few KB; anything near this is not from GitHub
EVENTS = ("repository_dispatch", "workflow_dispatch", "pull_request", "push")
DISPATCH_TYPE = "infra-change"

Sha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
Ref = Annotated[str, StringConstraints(pattern=r"^refs/(heads|tags|pull)/[A-Za-z0-9._/-]{1,200}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ClientPayload(_Strict):
    """``repository_dispatch`` client_payload sent by the customer's trigger workflow."""

    customer: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    sha: Sha
    ref: Ref | None = None
    pr: Annotated[int, Field(ge=1, le=10**9)] | None = None
    mode: Literal["plan", "apply"] = "plan"
    environment: Annotated[str, StringConstraints(pattern=ENVIRONMENT_PATTERN)] | None = None


class DispatchInputs(_Strict):
    """``workflow_dispatch`` inputs: always strings in the event."""

    customer: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    sha: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{40})?$")] = ""
    pr: Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]{0,8})?$")] = ""
    environment: Annotated[str, StringConstraints(pattern=r"^([a-z][a-z0-9-]{0,18}[a-z0-9])?$")] = ""
    mode: Literal["plan", "apply", ""] = ""


@dataclass(frozen=True)
class RunRequest:
    """What an event asks the engine to do."""

    event: str
    customer: str
    sha: str | None
    pr: int | None
    mode: str  # plan | apply
    environments: tuple[str, ...] = ()
    # Where feedback goes when it is not the customer's repository (manager-repo pull_request/push events).
    feedback_repository: str | None = None
    requested_mode: str | None = None  # what the event asked for; differs from `mode` in the plan step of an apply flow
    sender: str | None = None  # the GitHub login that sent the event

    @property
    def operation(self) -> str:
        return "up" if self.mode == "apply" else "preview"

    def to_dict(self) -> dict:
        return {"event": self.event, "customer": self.customer, "sha": self.sha, "pr": self.pr, "mode": self.mode,
                "environments": list(self.environments), "feedback_repository": self.feedback_repository}


def _problems(name: str, prefix: str, exc: ValidationError) -> ConfigError:
    problems = []
    for err in exc.errors(include_url=False):
        key = ".".join([prefix, *(str(p) for p in err["loc"])])
        value = err.get("input")
        shown = repr(value) if isinstance(value, (str, int)) and len(repr(value)) <= 60 else "(value not shown)"
        reason = "unknown key" if err["type"] == "extra_forbidden" else f"{err['msg'].lower()} (got {shown})"
        problems.append(Problem(name, None, key, reason))
    return ConfigError(problems)


def load_event(event_name: str, payload_path: Path | str, *, customer: str | None = None, mode: str | None = None,
               environments: tuple[str, ...] = ()) -> RunRequest:
    """Read and validate a GitHub event payload file.  Raises ``InputError`` (exit 2)."""
    name = str(payload_path)
    _check_event_name(event_name)
    path = Path(payload_path)
    try:
        size = path.stat().st_size
    except OSError:
        raise InputError(f"cannot read the event payload {name}") from None
    if size > MAX_EVENT_BYTES:
        raise InputError(f"event payload {name} is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        payload = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"event payload {name} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InputError(f"event payload {name} is not a JSON object")
    return parse_event(event_name, payload, name, customer=customer, mode=mode, environments=environments)


def _check_event_name(event_name: str) -> None:
    if event_name not in EVENTS:
        hint = "scheduled runs use `engine drift`" if event_name == "schedule" else f"supported: {', '.join(EVENTS)}"
        raise InputError(f"event {event_name[:40]!r} does not start a deployment", hint=hint)


def parse_event(event_name: str, payload: dict, name: str = "event", *, customer: str | None = None, mode: str | None = None,
                environments: tuple[str, ...] = ()) -> RunRequest:
    """Validate ``payload`` of ``event_name`` into a ``RunRequest``.  Raises ``InputError``."""
    request = _parse_event(event_name, payload, name, customer=customer, mode=mode, environments=environments)
    sender = (payload.get("sender") or {}).get("login") if isinstance(payload.get("sender"), dict) else None
    if isinstance(sender, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?", sender):
        return dataclasses.replace(request, sender=sender)
    return request


def _parse_event(event_name: str, payload: dict, name: str, *, customer: str | None, mode: str | None,
                 environments: tuple[str, ...]) -> RunRequest:
    _check_event_name(event_name)
    if event_name == "repository_dispatch":
        if payload.get("action") != DISPATCH_TYPE:
            raise InputError(f"repository_dispatch type {str(payload.get('action'))[:40]!r} is not {DISPATCH_TYPE!r}")
        raw = payload.get("client_payload")
        if not isinstance(raw, dict):
            raise ConfigError([Problem(name, None, "client_payload", "expected an object")])
        try:
            body = ClientPayload.model_validate(raw)
        except ValidationError as exc:
            raise _problems(name, "client_payload", exc) from None
        envs = environments or ((body.environment,) if body.environment else ())
        return RunRequest(event_name, body.customer, body.sha, body.pr, mode or body.mode, envs, requested_mode=body.mode)
    if event_name == "workflow_dispatch":
        raw = payload.get("inputs")
        if not isinstance(raw, dict):
            raise ConfigError([Problem(name, None, "inputs", "expected an object")])
        try:
            inputs = DispatchInputs.model_validate(raw)
        except ValidationError as exc:
            raise _problems(name, "inputs", exc) from None
        envs = environments or ((inputs.environment,) if inputs.environment else ())
        return RunRequest(event_name, inputs.customer, inputs.sha or None, int(inputs.pr) if inputs.pr else None,
                          mode or inputs.mode or "plan", envs, requested_mode=inputs.mode or "plan")
    # pull_request / push in the manager repository: the workflow names the customer.
    if customer is None:
        raise InputError(f"a {event_name} event needs --customer (the manager workflow decides which customers changed)")
    repo = (payload.get("repository") or {}).get("full_name")
    if not isinstance(repo, str) or not re.fullmatch(REPOSITORY_PATTERN, repo):
        raise InputError(f"{name}: repository.full_name is missing or malformed")
    if event_name == "pull_request":
        pr = payload.get("pull_request") or {}
        number, sha = pr.get("number"), (pr.get("head") or {}).get("sha")
        if not isinstance(number, int) or not 1 <= number <= 10**9 or not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise InputError(f"{name}: pull_request.number and pull_request.head.sha are missing or malformed")
        return RunRequest(event_name, customer, sha, number, mode or "plan", environments, feedback_repository=repo)
    sha = payload.get("after")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise InputError(f"{name}: push event without a valid 'after' commit")
    return RunRequest(event_name, customer, sha, None, mode or "apply", environments, feedback_repository=repo)
