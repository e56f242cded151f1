"""No value Terraform marks sensitive (or Pulumi marks secret) reaches any output, whatever the marker's shape.

Terraform marks sensitivity in the shape of the value: ``true``, a map of markers, or a
list of markers (``{"tags": [false, true]}``, ``{"block": [{"token": true}]}``), in
``before_sensitive`` and ``after_sensitive`` separately.  Every sensitive value here is a
canary string containing ``ZQX`` (public text never can), and every output the engine
makes from a plan is searched for it: the plan summary, drift diffs, the PR comment, the
drift issue, the drift console and Markdown tables, and the JSON of results and reports.
Values a plan marks sensitive somewhere are masked even where a provider copied them into
an attribute it does not mark (keys of such copies are not: only values are recognized).
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import tfplan
from engine.drift import DriftReport, StackDrift
from engine.reporters.drift import render_console, render_markdown
from engine.reporters.drift_issues import render_drift_issue
from engine.reporters.github import render_comment
from engine.diffs import SECRET_SIG, redact, value_diffs
from engine.results import SECRET_MASK, Changes, StackResult

FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "tfplan"
CANARY = "ZQX"


def everything_rendered(plan: dict) -> str:
    """Every output the engine makes from one plan (drift and plan mode), as one text."""
    texts = []
    for drift in (True, False):
        changes, resources = tfplan.summarize(plan, drift=drift)
        result = StackResult("acme", "staging", "acme/staging", "terraform", "drift" if drift else "preview", "succeeded",
                             changes=changes, resources=resources)
        texts.append(json.dumps(result.to_dict()))
        texts.append(changes.describe())
        texts.append(render_comment(result, mode="plan" if drift else "apply", sha="0" * 40, run_url=None, now="now"))
        texts.append(render_drift_issue(result, resolved=False, run_url=None, now="now")["body"])
        report = DriftReport(stacks=[StackDrift(None, result)])
        texts += [json.dumps(report.to_dict()), render_console(report), render_markdown(report)]
    return "\n".join(texts)


def drift_plan(before, after, before_sensitive, after_sensitive, **extra) -> dict:
    entry = {"address": "aws_thing.x", "mode": "managed", "type": "aws_thing", "name": "x",
             "change": {"actions": ["update"], "before": before, "after": after, "after_unknown": {},
                        "before_sensitive": before_sensitive, "after_sensitive": after_sensitive}}
    replace = {**entry, "address": "aws_thing.y", "name": "y", "action_reason": "replace_because_cannot_update",
               "change": {**entry["change"], "actions": ["delete", "create"], **extra}}
    return {"resource_drift": [entry], "resource_changes": [entry, replace]}


# -- regression: the shapes from the issue ------------------------------------------------------------------------------

def test_sensitive_list_elements_and_nested_blocks_never_leak_in_drift_mode():
    before = {"tags": ["public-tag", "ZQX-old-tag"], "block": [{"token": "ZQX-old-token", "name": "web"}],
              "labels": {"ZQX-old-key": "ZQX-old-label"}, "size": 1}
    after = {"tags": ["public-tag2", "ZQX-new-tag"], "block": [{"token": "ZQX-new-token", "name": "api"}],
             "labels": {"ZQX-new-key": "ZQX-new-label"}, "size": 2}
    plan = drift_plan(before, after, {"tags": [False, True], "block": [{"token": True}], "labels": True},
                      {"tags": [False, True], "block": [{"token": True}], "labels": True},
                      replace_paths=[["labels", "ZQX-new-key"], ["tags", 1], ["size"]])
    text = everything_rendered(plan)
    assert CANARY not in text
    _, (drifted,) = tfplan.summarize(plan, drift=True)
    assert drifted.diffs == [  # public parts still show what changed; sensitive parts say that they changed
        {"path": "block[0].name", "old": "web", "new": "api"},
        {"path": "block[0].token", "old": SECRET_MASK, "new": SECRET_MASK},
        {"path": "labels", "old": SECRET_MASK, "new": SECRET_MASK},  # a wholly sensitive map: not even its keys
        {"path": "size", "old": 1, "new": 2},
        {"path": "tags[0]", "old": "public-tag", "new": "public-tag2"},
        {"path": "tags[1]", "old": SECRET_MASK, "new": SECRET_MASK},
    ]
    _, (_, replaced) = tfplan.summarize(plan)
    assert replaced.properties == ["block", "labels", "size", "tags", "tags.1"]
    assert replaced.action_reason == "replace_because_cannot_update"


def test_sensitive_in_before_only_or_after_only_masks_both_sides():
    before, after = {"password": "ZQX-old", "list": ["ZQX-a", "b"]}, {"password": "ZQX-new", "list": ["ZQX-c", "b"]}
    for before_sensitive, after_sensitive in (({"password": True, "list": [True, False]}, {}),
                                              (False, {"password": True, "list": [True]}),
                                              ({"list": [True, False]}, {"password": True, "list": [False, False]})):
        assert CANARY not in everything_rendered(drift_plan(before, after, before_sensitive, after_sensitive))


def test_mismatched_marker_shapes_mask_the_whole_value():
    # the value changed type (list → map): each side's marker has its own shape
    plan = drift_plan({"v": ["ZQX-1", "x"]}, {"v": {"ZQX-key": "ZQX-2"}}, {"v": [True, False]}, {"v": {"ZQX-key": True}})
    assert CANARY not in everything_rendered(plan)
    assert redact({"k": "ZQX"}, [True]) == SECRET_MASK and redact(["ZQX"], {"a": True}) == SECRET_MASK
    assert redact('{"a": "ZQX"}', {"a": True}) == SECRET_MASK  # a marker shaped like a map on a string: all of it


def test_pulumi_secrets_inside_lists_and_maps_are_masked():
    secret = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "plaintext": '"ZQX-pulumi"'}
    diffs = value_diffs({"env": [{"name": "a", "value": secret}], "s": secret, "n": 1},
                        {"env": [{"name": "b", "value": {**secret, "plaintext": '"ZQX-new"'}}], "s": "plain", "n": 2})
    assert CANARY not in json.dumps(diffs)
    assert diffs == [{"path": "env[0].name", "old": "a", "new": "b"}, {"path": "env[0].value", "old": SECRET_MASK, "new": SECRET_MASK},
                     {"path": "n", "old": 1, "new": 2}, {"path": "s", "old": SECRET_MASK, "new": "plain"}]


def as_drift(plan: dict) -> dict:
    """A real plan's changes, also seen as drift (what ``plan -refresh-only`` reports as ``resource_drift``)."""
    drift = [{**e, "change": {**e["change"], "actions": ["update"]}} for e in plan["resource_changes"]]
    return {**plan, "resource_drift": drift}


def test_real_opentofu_plan_with_list_and_block_markers_leaks_nothing():
    plan = json.loads((FIXTURES / "opentofu-tainted-sensitive-list.json").read_text())
    assert "ZQX-new-password" in json.dumps(plan) and "ZQX-old-password" in json.dumps(plan)  # show -json carries them in clear
    upd = next(e for e in plan["resource_changes"] if e["address"] == "terraform_data.upd")["change"]
    assert upd["after_sensitive"]["input"] == {"block": [{"token": True}], "labels": True, "tags": [False, True]}
    assert CANARY not in everything_rendered(as_drift(plan))
    _, resources = tfplan.summarize(as_drift(plan), drift=True)
    diffs = {d["path"]: (d["old"], d["new"]) for d in next(r for r in resources if r.urn_name == "terraform_data.upd").diffs}
    assert diffs["input.tags[0]"] == ("public-1", "public-2") and diffs["input.block[0].name"] == ("web-1", "web-2")
    assert diffs["input.tags[1]"] == diffs["input.block[0].token"] == diffs["input.labels"] == (SECRET_MASK, SECRET_MASK)
    # OpenTofu keeps terraform_data.output (a copy of input) unmarked in the prior state: masked because the plan marks those values elsewhere
    assert diffs["output"] == ({"block": [{"name": "web-1", "token": SECRET_MASK}], "labels": {"owner": SECRET_MASK}, "tags": ["public-1", SECRET_MASK]}, None)


# -- property: every marker shape, thousands of values -------------------------------------------------------------------

_public_text = st.text(alphabet="abcdefgh", max_size=5)
_public = st.one_of(_public_text, st.integers(-3, 3), st.booleans(), st.none())
_public_key = st.sampled_from(["a", "b", "c", "tags", "block", "token", "name", "__meta"])
_canary = st.integers(0, 999).map(lambda n: f"{CANARY}{n}")
_secret_leaf = st.one_of(_canary, _canary.map(lambda c: json.dumps({"k": c, "n": 1})), _canary.map(lambda c: "{" + c), st.just(CANARY))
_secret_key = st.one_of(_canary.map(lambda c: c + "key"), _public_key)
_secret_value = st.one_of(  # anything, with canaries as values and as keys (flat shapes: cheap to generate)
    _secret_leaf,
    st.lists(_secret_leaf, min_size=1, max_size=3),
    st.dictionaries(_secret_key, _secret_leaf, min_size=1, max_size=3),
    st.dictionaries(_secret_key, st.lists(_secret_leaf, min_size=1, max_size=2), min_size=1, max_size=2),
    st.lists(st.dictionaries(_secret_key, _secret_leaf, min_size=1, max_size=2), min_size=1, max_size=2),
)


def _other_shape_marker(value):
    """A marker whose shape does not fit ``value`` but that marks something."""
    return {"a": True} if isinstance(value, list) else [False, True]


# A spec is a tree; realize() turns it into the value on one side, markers() into that side's marker.
_spec = st.recursive(
    st.one_of(
        st.tuples(st.just("pub"), _public, _public),
        st.tuples(st.just("secret"), _secret_value, _secret_value),
        st.tuples(st.just("pulumi"), _canary),
        _secret_value.map(lambda v: ("mismatch", v, _other_shape_marker(v))),
    ),
    lambda inner: st.one_of(
        st.tuples(st.just("dict"), st.dictionaries(_public_key, inner, max_size=4), st.booleans()),
        st.tuples(st.just("list"), st.lists(inner, max_size=4)),
    ),
    max_leaves=6)


def realize(spec, side: int):
    kind = spec[0]
    if kind in ("pub", "secret"):
        return spec[1 + side]
    if kind == "pulumi":
        return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(spec[1] + str(side))}
    if kind == "mismatch":
        return spec[1]
    if kind == "dict":
        return {k: realize(v, side) for k, v in spec[1].items()}
    return [realize(v, side) for v in spec[1]]


def markers(spec):
    kind = spec[0]
    if kind == "secret":
        return True
    if kind == "mismatch":
        return spec[2]
    if kind == "dict":
        out = {k: markers(v) for k, v in spec[1].items()}
        return out if spec[2] else {k: m for k, m in out.items() if m is not False}  # Terraform leaves out the falses
    if kind == "list":
        return [markers(v) for v in spec[1]]
    return False


_top = st.dictionaries(_public_key, _spec, min_size=1, max_size=3).map(lambda d: ("dict", d, False))


@st.composite
def plans(draw):
    """before/after and their markers: same shape or not, sensitive on both sides, before only, or after only."""
    variant = draw(st.sampled_from(["same", "independent", "before-only", "after-only", "one-side-absent", "unmarked-copy"]))
    spec = draw(_top)
    before, after = realize(spec, 0), realize(spec, 1)
    before_marks = after_marks = markers(spec)
    if variant == "independent":
        other = draw(_top)
        after, after_marks = realize(other, 1), markers(other)
    elif variant == "before-only":
        after_marks = draw(st.sampled_from([False, {}]))  # no longer sensitive after: the old and new values are still hidden
    elif variant == "after-only":
        before_marks = draw(st.sampled_from([False, {}]))
    elif variant == "one-side-absent":
        before, before_marks = None, False
    elif variant == "unmarked-copy":  # a provider copies sensitive values into an attribute it does not mark
        before = {**before, "output": draw(st.permutations(marked_strings(spec, 0)))}
    paths = draw(st.lists(st.sampled_from(sorted(_paths(after), key=str) or [["x"]]), max_size=3))
    return drift_plan(before, after, before_marks, after_marks, replace_paths=paths)


def marked_strings(spec, side: int) -> list[str]:
    """The string values (not keys) a spec marks sensitive on one side."""
    kind = spec[0]
    if kind in ("secret", "mismatch"):
        def leaves(v):
            if isinstance(v, dict):
                return [x for item in v.values() for x in leaves(item)]
            if isinstance(v, list):
                return [x for item in v for x in leaves(item)]
            return [v] if isinstance(v, str) else []
        return leaves(realize(spec, side))
    if kind == "dict":
        return [x for v in spec[1].values() for x in marked_strings(v, side)]
    if kind == "list":
        return [x for v in spec[1] for x in marked_strings(v, side)]
    return []


def _paths(value, prefix=()):
    """Every path into a value (keys inside wholly sensitive maps included): candidates for replace_paths."""
    out = [list(prefix)] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=plans())
def test_no_sensitive_value_reaches_any_output_whatever_the_marker_shape(plan):
    text = everything_rendered(plan)
    assert CANARY not in text


_pulumi_spec = st.recursive(
    st.one_of(st.tuples(st.just("pub"), _public, _public), st.tuples(st.just("pulumi"), _canary)),
    lambda inner: st.one_of(st.tuples(st.just("dict"), st.dictionaries(_public_key, inner, max_size=4), st.booleans()),
                            st.tuples(st.just("list"), st.lists(inner, max_size=4))),
    max_leaves=10)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_pulumi_spec)
def test_pulumi_secrets_never_reach_drift_diffs_at_any_depth(spec):
    # the Pulumi runner diffs refreshed outputs with value_diffs(old, new): no marker, only secret envelopes
    diffs = value_diffs(realize(spec, 0), realize(spec, 1))
    assert CANARY not in json.dumps(diffs)
