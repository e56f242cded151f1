"""Turn a GitHub event into an engine run request.  Everything in an event is untrusted.

Which repository a customer's files are read from and where feedback goes are taken
from the tenant record, never from the event; the event only names the customer,
the commit, the pull request and the mode, and each is checked here.

A dispatch (``repository_dispatch`` / ``workflow_dispatch``) carries a signature: HMAC-SHA256,
with the customer's own dispatch secret, over the canonical text of what it asks
(``dispatch_message``).  This module reads it; ``engine.triggers.authenticate`` verifies it.

Some events ask for nothing: a push that deletes a branch or tag, a push of a tag, a push to
a branch other than the default one, a pull request that was labeled, locked or closed.
They are filtered here, at the door: ``parse_event`` returns ``NothingToDo`` with the
reason (a value, not an error: the command exits 0), and nothing is read or written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from engine.config import CUSTOMER_ID_PATTERN, ENVIRONMENT_PATTERN, REPOSITORY_PATTERN
from engine.validation import validation_problems
from engine.errors import ConfigError, InputError, Problem
from engine.untrusted import escape_inline

MAX_EVENT_BYTES = 1024 * 1024  # real payloads are a few KB; anything near this is not from GitHub
EVENTS = ("repository_dispatch", "workflow_dispatch", "pull_request", "push")
DISPATCH_TYPE = "infra-change"
DISPATCHES = ("repository_dispatch", "workflow_dispatch")
SIGNATURE = r"t=[0-9]{1,12},v1=[0-9a-f]{64}"  # t = unix seconds when signed, v1 = hex HMAC-SHA256 (dispatch_message)

# Pull-request actions that change the code to plan (GitHub's default activity types for `pull_request`).
PLANNED_PR_ACTIONS = ("opened", "synchronize", "reopened")
NULL_SHA = "0" * 40  # `after` of a push that deletes its ref

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
    # close: the pull request closed (or merged); its review stack is destroyed (engine/review_loop.py)
    mode: Literal["plan", "apply", "close"] = "plan"
    environment: Annotated[str, StringConstraints(pattern=ENVIRONMENT_PATTERN)] | None = None
    signature: Annotated[str, StringConstraints(pattern=f"^{SIGNATURE}$")] | None = None


class DispatchInputs(_Strict):
    """``workflow_dispatch`` inputs: always strings in the event."""

    customer: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    sha: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{40})?$")] = ""
    pr: Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]{0,8})?$")] = ""
    environment: Annotated[str, StringConstraints(pattern=r"^([a-z][a-z0-9-]{0,18}[a-z0-9])?$")] = ""
    mode: Literal["plan", "apply", ""] = ""
    signature: Annotated[str, StringConstraints(pattern=f"^({SIGNATURE})?$")] = ""


@dataclass(frozen=True)
class DispatchSignature:
    """What a dispatch signed: the canonical text, when (unix seconds) and the MAC it sent."""

    message: bytes = field(repr=False)
    timestamp: int
    mac: str = field(repr=False)


def dispatch_message(*, customer: str, sha: str | None, ref: str | None, pr: int | None, mode: str,
                     environment: str | None, timestamp: int) -> bytes:
    """The canonical text a dispatch signs: one ``name=value`` line per field, absent fields empty.

    Every field that decides what runs or where feedback goes is in it, so a captured
    signature cannot be replayed for another commit, pull request, mode or environment.
    (The values are validated before this is built: none contains a newline.)
    """
    fields = {"t": str(timestamp), "customer": customer, "sha": sha or "", "ref": ref or "", "pr": str(pr) if pr else "",
              "mode": mode, "environment": environment or ""}
    return ("infra-change.v1\n" + "".join(f"{name}={value}\n" for name, value in fields.items())).encode()


def sign_dispatch(secret: str, *, timestamp: int, **fields) -> str:
    """The ``signature`` value for a dispatch (what the customer's trigger workflow computes)."""
    mac = hmac.new(secret.encode(), dispatch_message(timestamp=timestamp, **fields), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _signature(value: str | None, **fields) -> DispatchSignature | None:
    if not value:
        return None
    stamp, mac = value.split(",", 1)
    timestamp = int(stamp.removeprefix("t="))
    return DispatchSignature(dispatch_message(timestamp=timestamp, **fields), timestamp, mac.removeprefix("v1="))


@dataclass(frozen=True)
class RunRequest:
    """What an event asks the engine to do."""

    event: str
    customer: str
    sha: str | None
    pr: int | None
    mode: str  # plan | apply | close (a repository_dispatch of a closed pull request: destroy its review stack)
    environments: tuple[str, ...] = ()
    # Where feedback goes when it is not the customer's repository (manager-repo pull_request/push events).
    feedback_repository: str | None = None
    requested_mode: str | None = None  # what the event asked for; differs from `mode` in the plan step of an apply flow
    sender: str | None = None  # the GitHub login that sent the event
    signature: DispatchSignature | None = None  # a dispatch's signature (verified by engine.triggers.authenticate)

    @property
    def operation(self) -> str:
        return {"apply": "up", "close": "destroy"}.get(self.mode, "preview")

    def to_dict(self) -> dict:
        return {"event": self.event, "customer": self.customer, "sha": self.sha, "pr": self.pr, "mode": self.mode,
                "environments": list(self.environments), "feedback_repository": self.feedback_repository}


@dataclass(frozen=True)
class NothingToDo:
    """An event that asks for nothing (a deleted ref, a tag, a labeled pull request…): no run, exit 0.

    ``reason`` is one line, safe to print (any text from the event in it is escaped).
    """

    event: str
    reason: str

    def to_dict(self) -> dict:
        return {"ok": True, "event": self.event, "skipped": self.reason}


def _shown(value: str, limit: int = 100) -> str:
    """Text from the event inside a reason: one line, escaped, at most ``limit`` characters of it."""
    return escape_inline(value if len(value) <= limit else value[:limit] + "…")


def _problems(name: str, prefix: str, exc: ValidationError, model, data: dict) -> ConfigError:
    return ConfigError(validation_problems(exc, name, model, data, prefix=(prefix,)))


def load_event(event_name: str, payload_path: Path | str, *, customer: str | None = None, mode: str | None = None,
               environments: tuple[str, ...] = ()) -> RunRequest | NothingToDo:
    """Read and validate a GitHub event payload file: what it asks, or ``NothingToDo``.  Raises ``InputError`` (exit 2)."""
    name = str(payload_path)
    _check_event_name(event_name)
    raw = _read_payload(Path(payload_path), name)
    try:
        payload = json.loads(raw)
    except RecursionError:
        raise InputError(f"event payload {name} nests arrays or objects too deeply to be a GitHub event") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"event payload {name} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InputError(f"event payload {name} is not a JSON object")
    return parse_event(event_name, payload, name, customer=customer, mode=mode, environments=environments)


def _read_payload(path: Path, name: str) -> bytes:
    """At most ``MAX_EVENT_BYTES`` of a regular file (a FIFO or a device such as /dev/zero reports no
    useful size and could be read forever, so only regular files are read, and never more than the limit)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # O_NONBLOCK: opening a FIFO must not hang
    except OSError as exc:
        raise InputError(f"cannot read the event payload {name}: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InputError(f"event payload {name} is not a regular file")
        data = fh.read(MAX_EVENT_BYTES + 1)
    if len(data) > MAX_EVENT_BYTES:
        raise InputError(f"event payload {name} is too large: the limit is {MAX_EVENT_BYTES} bytes")
    return data


def _check_event_name(event_name: str) -> None:
    if event_name not in EVENTS:
        hint = "scheduled runs use `engine drift`" if event_name == "schedule" else f"supported: {', '.join(EVENTS)}"
        raise InputError(f"event {event_name[:40]!r} does not start a deployment", hint=hint)


def parse_event(event_name: str, payload: dict, name: str = "event", *, customer: str | None = None, mode: str | None = None,
                environments: tuple[str, ...] = ()) -> RunRequest | NothingToDo:
    """Validate ``payload`` of ``event_name`` into a ``RunRequest``, or ``NothingToDo`` for an event that asks
    for nothing (see ``asks_for_nothing``).  Raises ``InputError``."""
    _check_event_name(event_name)
    skip = asks_for_nothing(event_name, payload, name)
    if skip is not None:
        return skip
    request = _parse_event(event_name, payload, name, customer=customer, mode=mode, environments=environments)
    sender = (payload.get("sender") or {}).get("login") if isinstance(payload.get("sender"), dict) else None
    if isinstance(sender, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?", sender):
        return dataclasses.replace(request, sender=sender)
    return request


def asks_for_nothing(event_name: str, payload: dict, name: str = "event") -> NothingToDo | None:
    """Why a ``push`` or ``pull_request`` event asks for nothing, or None when it asks for a run.

    - a push that deletes its ref (``deleted: true``, or ``after`` all zeros): there is no commit to apply;
    - a push of anything but a branch (a tag): tags are not deployed;
    - a push to a branch other than the repository's default branch: only the default branch is applied;
    - a pull request action other than opened / synchronize / reopened (closed, labeled, locked, …):
      the code to plan did not change.

    Fields GitHub always sends but a payload written by hand may leave out (``ref``, ``action``,
    ``repository.default_branch``) are checked when present.  Raises ``InputError`` when one has the
    wrong type.  Dispatches are never filtered: they ask for what they say (and are signed).
    """
    if event_name == "push":
        ref, deleted, after = payload.get("ref"), payload.get("deleted"), payload.get("after")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("refs/")):
            raise InputError(f"{name}: ref is not a Git ref (refs/…)")
        if deleted is not None and not isinstance(deleted, bool):
            raise InputError(f"{name}: deleted is not true or false")
        shown = _shown(ref) if ref else "a ref"
        if deleted or after == NULL_SHA:
            return NothingToDo(event_name, f"push deletes {shown}, so there is no commit to apply")
        if ref is None:
            return None
        if not ref.startswith("refs/heads/"):
            return NothingToDo(event_name, f"push of {shown} is not a push to a branch; only branches are applied")
        branch = ref.removeprefix("refs/heads/")
        default = (payload.get("repository") or {}).get("default_branch") if isinstance(payload.get("repository"), dict) else None
        if isinstance(default, str) and default and branch != default:
            return NothingToDo(event_name, f"push to {_shown(branch)} is not a push to the default branch "
                                           f"({_shown(default)}); only the default branch is applied")
        return None
    if event_name == "pull_request":
        action = payload.get("action")
        if action is None:
            return None
        if not isinstance(action, str):
            raise InputError(f"{name}: action is not a string")
        if action not in PLANNED_PR_ACTIONS:
            return NothingToDo(event_name, f"pull_request action '{_shown(action, 40)}' does not change the code to plan "
                                           "(only opened, synchronize and reopened do)")
    return None


def _parse_event(event_name: str, payload: dict, name: str, *, customer: str | None, mode: str | None,
                 environments: tuple[str, ...]) -> RunRequest:
    if event_name == "repository_dispatch":
        if payload.get("action") != DISPATCH_TYPE:
            action = payload.get("action")
            shown = "has no type (action)" if action is None else f"type {escape_inline(str(action)[:40])!r} is not {DISPATCH_TYPE!r}"
            raise InputError(f"repository_dispatch {shown}")  # one line, like every refusal at the door
        raw = payload.get("client_payload")
        if not isinstance(raw, dict):
            raise ConfigError([Problem(name, None, "client_payload", "expected an object")])
        try:
            body = ClientPayload.model_validate(raw)
        except ValidationError as exc:
            raise _problems(name, "client_payload", exc, ClientPayload, raw) from None
        envs = environments or ((body.environment,) if body.environment else ())
        signature = _signature(body.signature, customer=body.customer, sha=body.sha, ref=body.ref,
                               pr=body.pr, mode=body.mode, environment=body.environment)
        # --mode says what to do with a plan or apply request (infra-deploy's plan job plans every dispatch first);
        # it never turns a close into a plan or an apply
        asked = body.mode if body.mode == "close" else (mode or body.mode)
        return RunRequest(event_name, body.customer, body.sha, body.pr, asked, envs, requested_mode=body.mode,
                          signature=signature)
    if event_name == "workflow_dispatch":
        raw = payload.get("inputs")
        if not isinstance(raw, dict):
            raise ConfigError([Problem(name, None, "inputs", "expected an object")])
        try:
            inputs = DispatchInputs.model_validate(raw)
        except ValidationError as exc:
            raise _problems(name, "inputs", exc, DispatchInputs, raw) from None
        envs = environments or ((inputs.environment,) if inputs.environment else ())
        pr = int(inputs.pr) if inputs.pr else None
        signature = _signature(inputs.signature, customer=inputs.customer, sha=inputs.sha, ref=None, pr=pr,
                               mode=inputs.mode or "plan", environment=inputs.environment)
        return RunRequest(event_name, inputs.customer, inputs.sha or None, pr, mode or inputs.mode or "plan", envs,
                          requested_mode=inputs.mode or "plan", signature=signature)
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
