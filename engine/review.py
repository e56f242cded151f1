"""Review stacks: an ephemeral environment per pull request.  Pure — no I/O, no tools.

A tenant whose record says ``review_stacks: true`` gets, for each pull request of its own repository (never a
fork's), an environment ``pr-<number>``: its own stack, with the settings of the customer file's ``review_base``
environment (default: the file's first environment that is not production), deployed when the pull request
opens or changes and destroyed when it closes (``engine/review_loop.py``), or by ``engine gc`` once it has not
been deployed for longer than a TTL.

**Which review stacks exist** is read from the run history (every finished stack is a row): a review stack is
*live* from its first ``up`` (succeeded or failed — a failed create can leave resources) until a ``destroy``
that succeeded or found nothing.  Its age, for ``engine gc``, is the time since its last ``up`` finished.

**Network slots.** Review stacks use the top slots of the tenant's /18 (``REVIEW_SLOTS``, 8–15: one /22 each);
``plan_targets`` keeps the tenant's own environments out of them.  A pull request's preferred slot is
``8 + number mod 8``; when another live review stack of the tenant holds it, the next free slot in ring order;
none free: refused, with the stacks that hold them.  Slots are stored nowhere: ``replay`` recomputes them from
the history, in the order the stacks were first deployed, so a stack keeps its slot for its whole life and
every machine reading the same history computes the same slots.  (Two pull requests deployed for the first
time at the same moment on two machines may pick the same slot; the replay gives it to the one recorded first,
and the other moves to its own slot on its next deploy.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.config import REVIEW_ENVIRONMENT_PATTERN, REVIEW_SLOTS, CustomerConfig
from engine.errors import InputError

PRODUCTION_NAMES = ("production", "prod")
_TTL = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def environment_name(pr: int) -> str:
    """The review stack's environment (and stack) name of pull request ``pr``."""
    return f"pr-{pr}"


def pull_request_of(environment: str) -> int | None:
    """The pull request number of a review stack's environment name, or None for any other environment."""
    return int(environment[3:]) if re.fullmatch(REVIEW_ENVIRONMENT_PATTERN, environment) else None


def base_environment(config: CustomerConfig) -> str:
    """Whose settings a review stack gets: ``review_base``, else the first environment that is not production,
    else the first environment."""
    if config.review_base is not None:
        return config.review_base
    names = list(config.environments)
    return next((name for name in names if name not in PRODUCTION_NAMES), names[0])


def review_config(config: CustomerConfig, pr: int, slot: int) -> CustomerConfig:
    """The customer file as the review stack of ``pr`` sees it: one environment, ``pr-<number>``, with the base
    environment's settings in network slot ``slot``, tagged with its pull request."""
    if slot not in REVIEW_SLOTS:
        raise ValueError(f"network slot {slot} is not a review slot")
    base = config.environments[base_environment(config)]
    # model_copy does not validate: the pr-<number> name is reserved for exactly this use
    return config.model_copy(update={
        "environments": {environment_name(pr): base.model_copy(update={"network_slot": slot})},
        "tags": {**config.tags, "pull-request": str(pr)},
        "review_base": None,
    })


def preferred_slot(pr: int) -> int:
    return REVIEW_SLOTS[pr % len(REVIEW_SLOTS)]


def allocate(pr: int, taken: set[int]) -> int | None:
    """The slot for a new review stack of ``pr``: its preferred slot, else the next free one in ring order; None when
    every review slot is taken."""
    start = REVIEW_SLOTS.index(preferred_slot(pr))
    for step in range(len(REVIEW_SLOTS)):
        slot = REVIEW_SLOTS[(start + step) % len(REVIEW_SLOTS)]
        if slot not in taken:
            return slot
    return None


@dataclass(frozen=True)
class HistoryRow:
    """One recorded operation on a review stack (the run history's columns that matter here)."""

    id: int
    customer: str
    environment: str
    operation: str
    status: str
    finished_at: str  # UTC ISO-8601, as the history writes it
    sha: str | None = None  # the commit it ran (GitHub events)


@dataclass(frozen=True)
class ReviewStack:
    """A live review stack."""

    customer: str
    environment: str
    pr: int
    slot: int | None  # None: every slot was taken when it was first deployed (only by a race; see the module docstring)
    created_at: str  # when its first up (of this life) finished
    deployed_at: str  # when its last up finished: its age for `engine gc` counts from here
    sha: str | None = None  # the commit its last up deployed

    def to_dict(self) -> dict:
        return {"customer": self.customer, "environment": self.environment, "pr": self.pr, "slot": self.slot,
                "created_at": self.created_at, "deployed_at": self.deployed_at, "sha": self.sha}


DEPLOYED = ("succeeded", "failed")  # an up that may have created something
GONE = ("succeeded", "not-deployed")  # a destroy after which nothing is left


def replay(rows: list[HistoryRow]) -> dict[tuple[str, str], ReviewStack]:
    """The live review stacks, (customer, environment) → stack, from their recorded ups and destroys, with the slot
    each was given when it was first deployed.  ``rows`` in the order they were recorded (ids ascending)."""
    live: dict[tuple[str, str], ReviewStack] = {}
    for row in sorted(rows, key=lambda r: r.id):
        pr = pull_request_of(row.environment)
        if pr is None:
            continue
        key = (row.customer, row.environment)
        if row.operation == "destroy" and row.status in GONE:
            live.pop(key, None)
        elif row.operation == "up" and row.status in DEPLOYED:
            if key in live:
                live[key] = ReviewStack(row.customer, row.environment, pr, live[key].slot, live[key].created_at, row.finished_at, row.sha)
            else:
                taken = {s.slot for k, s in live.items() if k[0] == row.customer and s.slot is not None}
                live[key] = ReviewStack(row.customer, row.environment, pr, allocate(pr, taken), row.finished_at, row.finished_at, row.sha)
    return live


def slot_for(customer: str, pr: int, live: dict[tuple[str, str], ReviewStack]) -> int | str:
    """The slot of ``pr``'s review stack: the one it holds when it is live, else a free one; or, when every review
    slot is held by another live review stack, the reason (an expected refusal: a value, not an error)."""
    own = live.get((customer, environment_name(pr)))
    if own is not None and own.slot is not None:
        return own.slot
    others = sorted((s for (c, _), s in live.items() if c == customer and s.pr != pr and s.slot is not None), key=lambda s: s.slot or 0)
    slot = allocate(pr, {s.slot for s in others if s.slot is not None})
    if slot is None:
        held = ", ".join(f"{s.environment} (slot {s.slot})" for s in others)
        return (f"no free review slot for pull request #{pr}: {held} hold all {len(REVIEW_SLOTS)}; a review stack is freed "
                "when its pull request closes, or by `engine gc` after its TTL")
    return slot


def parse_ttl(text: str) -> int:
    """``72h``, ``3d``, ``90m``, ``30s`` → seconds.  Raises ``InputError``."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise InputError(f"--ttl {text!r} is not a duration", hint="a whole number and a unit: 30s, 90m, 72h or 3d")
    return int(match[1]) * _UNIT_SECONDS[match[2]]
