"""Index of GitHub's REST operations, derived from githubkit's generated client.

githubkit ships one generated method per operation of GitHub's published
OpenAPI description (``githubkit_schemas.<version>.rest.*``).  Each method
carries everything a fake server needs to check a request:

* the docstring's second paragraph is ``METHOD /path/{param}``;
* ``type_validate_python(<BodyModel>, json)`` names the request-body model;
* ``params = {...}`` lists the query parameters (typed by the signature);
* ``self._github.request(..., response_model=<expr>)`` names the response type.

Importing those modules is slow and memory hungry (several MB of source each),
so we read them with ``ast`` instead and resolve model names lazily through
``githubkit_schemas.<version>.models`` only when a request actually needs one.
The parsed index is cached on disk, keyed by the package version and the
source files' mtimes, because parsing all modules takes a few seconds.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import tempfile
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, TypeAdapter, ValidationError

SCHEMA_VERSION = "v2026_03_10"
_PKG = f"githubkit_schemas.{SCHEMA_VERSION}"

# Bump when the cached structure changes so stale caches are ignored.
_CACHE_FORMAT = 3

# Template parameters that GitHub lets span several path segments (file paths,
# refs like ``heads/feature/x``, ``base...head`` pairs).  githubkit interpolates
# them into the URL unescaped, so the server sees real slashes.
MULTI_SEGMENT_PARAMS = frozenset({"path", "ref", "branch", "basehead"})


@dataclass(frozen=True)
class Operation:
    """One REST operation as described by GitHub's OpenAPI document."""

    name: str  # python method, e.g. "repos.create_commit_status"
    operation_id: str  # GitHub's id, e.g. "repos/create-commit-status"
    method: str
    path: str  # template, e.g. "/repos/{owner}/{repo}/statuses/{sha}"
    body_model: str | None  # python expression, usually a model class name
    takes_body: bool  # whether the client sends a JSON/raw body at all
    response_model: str | None  # python expression, e.g. "list[Status]"
    query_params: dict[str, str] = field(default_factory=dict)  # name -> annotation
    docs_url: str | None = None  # GitHub's docs page, used as documentation_url


class SchemaViolation(Exception):
    """A request that GitHub's API description does not allow."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


# --------------------------------------------------------------------------
# Building the index
# --------------------------------------------------------------------------


def _rest_dir() -> Path:
    spec = importlib.util.find_spec(_PKG)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{_PKG} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "rest"


def _find_call(func: ast.FunctionDef, attr: str) -> ast.Call | None:
    for node in ast.walk(func):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == attr) or (
                isinstance(f, ast.Name) and f.id == attr
            ):
                return node
    return None


def _operation_from_function(module: str, func: ast.FunctionDef) -> Operation | None:
    doc = ast.get_docstring(func)
    if not doc:
        return None
    paragraphs = [p.strip() for p in doc.split("\n\n")]
    if len(paragraphs) < 2:
        return None
    m = re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE|HEAD) (/\S*)", paragraphs[1])
    if not m:
        return None

    request = _find_call(func, "request")
    if request is None:
        return None
    kwargs = {kw.arg: kw.value for kw in request.keywords if kw.arg}
    response_model = (
        ast.unparse(kwargs["response_model"]) if "response_model" in kwargs else None
    )
    takes_body = "json" in kwargs or "content" in kwargs or "data" in kwargs

    body_model = None
    validate = _find_call(func, "type_validate_python")
    if validate is not None and validate.args:
        body_model = ast.unparse(validate.args[0])

    # Query parameters: keys of the ``params = {...}`` literal, typed by the
    # keyword-only arguments of the same name in the signature.
    annotations = {
        a.arg: ast.unparse(a.annotation)
        for a in (*func.args.args, *func.args.kwonlyargs)
        if a.annotation is not None
    }
    query_params: dict[str, str] = {}
    for node in func.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "params"
            and isinstance(node.value, ast.Dict)
        ):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    arg = value.id if isinstance(value, ast.Name) else key.value
                    query_params[key.value] = annotations.get(arg, "Any")

    docs = re.search(r"See also: (https://\S+)", doc)
    return Operation(
        name=f"{module}.{func.name}",
        operation_id=paragraphs[0],
        method=m.group(1),
        path=m.group(2),
        body_model=body_model,
        takes_body=takes_body,
        response_model=response_model,
        query_params=query_params,
        docs_url=docs.group(1) if docs else None,
    )


def _parse_module(path: Path) -> list[Operation]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    ops = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for func in cls.body:
            # Only the sync implementations: overloads have no docstring and
            # async twins describe the same operation.
            if isinstance(func, ast.FunctionDef):
                op = _operation_from_function(path.stem, func)
                if op is not None:
                    ops.append(op)
    return ops


def _cache_path(files: list[Path]) -> Path:
    try:
        version = importlib.metadata.version("githubkit-schemas")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    h = hashlib.sha256(f"{_CACHE_FORMAT}:{version}:{SCHEMA_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    cache_dir = Path(
        os.environ.get("FAKEGITHUB_CACHE_DIR")
        or Path(tempfile.gettempdir()) / "fakegithub-schema-cache"
    )
    return cache_dir / f"index-{version}-{SCHEMA_VERSION}-{h.hexdigest()[:16]}.json"


def _build_operations() -> list[Operation]:
    files = sorted(p for p in _rest_dir().glob("*.py") if p.name != "__init__.py")
    cache = _cache_path(files)
    try:
        return [Operation(**d) for d in json.loads(cache.read_text())]
    except (OSError, ValueError, TypeError):
        pass

    ops = [op for f in files for op in _parse_module(f)]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so parallel test workers never read half a file.
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([asdict(op) for op in ops]))
        os.replace(tmp, cache)
    except OSError:  # a read-only temp dir only costs speed
        pass
    return ops


# --------------------------------------------------------------------------
# Path matching
# --------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/")] if path.strip("/") else []


@dataclass
class _Template:
    op: Operation
    segments: list[str]
    params: list[str | None]  # param name per segment, None for literals

    @property
    def specificity(self) -> tuple[int, ...]:
        # Compared lexicographically: a literal earlier in the path wins, so
        # ``/repos/{o}/{r}/issues/comments/{id}`` beats ``.../issues/{number}/{x}``.
        return tuple(1 if p is None else 0 for p in self.params)


def _param_name(seg: str) -> str | None:
    m = re.fullmatch(r"\{(\w+)\}", seg)
    return m.group(1) if m else None


class SchemaIndex:
    """All operations of one GitHub REST API description, keyed by (METHOD, template)."""

    def __init__(self, operations: list[Operation]):
        self.operations: dict[tuple[str, str], Operation] = {}
        for op in operations:
            # A handful of operations appear in two client classes; first wins.
            self.operations.setdefault((op.method, op.path), op)
        self._by_method_len: dict[tuple[str, int], list[_Template]] = {}
        self._multi: dict[str, list[_Template]] = {}
        for op in self.operations.values():
            segs = _segments(op.path)
            tpl = _Template(op, segs, [_param_name(s) for s in segs])
            self._by_method_len.setdefault((op.method, len(segs)), []).append(tpl)
            if any(p in MULTI_SEGMENT_PARAMS for p in tpl.params):
                self._multi.setdefault(op.method, []).append(tpl)
        for tpls in self._by_method_len.values():
            tpls.sort(key=lambda t: t.specificity, reverse=True)

    def __len__(self) -> int:
        return len(self.operations)

    def get(self, method: str, template: str) -> Operation | None:
        return self.operations.get((method.upper(), template))

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """Match a concrete path (percent-encoded, no query) to an operation."""
        from urllib.parse import unquote

        method = method.upper()
        raw = _segments(path.split("?", 1)[0])
        # Templates with the same number of segments, most specific first.
        for tpl in self._by_method_len.get((method, len(raw)), ()):
            params: dict[str, str] = {}
            for seg, lit, name in zip(raw, tpl.segments, tpl.params):
                if name is None:
                    if seg != lit:
                        break
                elif not seg:
                    break
                else:
                    params[name] = unquote(seg)
            else:
                return tpl.op, params
        # Fallback: a slash-bearing parameter (file path, ref) spans segments.
        best: tuple[tuple[int, ...], Operation, dict[str, str]] | None = None
        for tpl in self._multi.get(method, ()):
            params = _match_multi(tpl, raw)
            if params is not None and (best is None or tpl.specificity > best[0]):
                best = (tpl.specificity, tpl.op, params)
        return (best[1], best[2]) if best else None


def _match_multi(tpl: _Template, raw: list[str]) -> dict[str, str] | None:
    from urllib.parse import unquote

    pattern = "/".join(
        re.escape(seg)
        if name is None
        else f"(?P<{name}>.+?)"
        if name in MULTI_SEGMENT_PARAMS
        else f"(?P<{name}>[^/]+)"
        for seg, name in zip(tpl.segments, tpl.params)
    )
    m = re.fullmatch(pattern, "/".join(raw))
    return {k: unquote(v) for k, v in m.groupdict().items()} if m else None


@functools.lru_cache(maxsize=1)
def load_index() -> SchemaIndex:
    """The (process-wide, disk-cached) index of GitHub's REST operations."""
    return SchemaIndex(_build_operations())


def match(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    return load_index().match(method, path)


# --------------------------------------------------------------------------
# Resolving model expressions to types
# --------------------------------------------------------------------------


def _models_module() -> types.ModuleType:
    # githubkit's lazy module imports only the group file defining a name.
    return importlib.import_module(f"{_PKG}.models")


_BUILTIN_NAMES: dict[str, Any] = {
    "list": list,
    "dict": dict,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "Any": Any,
    "None": None,
    "Union": Union,
    "Literal": Literal,
    "_dt": _dt,
}


@functools.lru_cache(maxsize=None)
def resolve_type(expr: str) -> Any:
    """Evaluate a type expression from the generated code (``list[Status]``...)."""
    from githubkit.typing import Missing, UnsetType

    namespace = dict(_BUILTIN_NAMES, Missing=Missing, UnsetType=UnsetType)
    models = None
    for node in ast.walk(ast.parse(expr, mode="eval")):
        if isinstance(node, ast.Name) and node.id not in namespace:
            models = models or _models_module()
            namespace[node.id] = getattr(models, node.id)
    return eval(compile(expr, "<schema>", "eval"), namespace)  # noqa: S307


@functools.lru_cache(maxsize=None)
def _adapter(expr: str) -> TypeAdapter:
    return TypeAdapter(resolve_type(expr))


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "resource": "Request",
            "field": ".".join(str(p) for p in e["loc"]),
            "code": "invalid",
            "message": e["msg"],
        }
        for e in exc.errors(include_url=False)
    ]


def validate_body(op: Operation, body: Any, raw: bytes | None = None) -> Any:
    """Check a request body against the operation's body model.

    Validation runs in pydantic's *strict JSON* mode when the raw bytes are
    given: GitHub rejects ``"5"`` where an integer is expected, so lax coercion
    would hide client bugs.  Keys the model does not declare are rejected as
    well, at every nesting level: GitHub silently ignores them, which makes a
    misspelt field (``descripton``) a bug nobody notices.
    """
    if op.body_model is None:
        if body is not None and not op.takes_body:
            raise SchemaViolation(f"{op.method} {op.path} takes no request body")
        return body
    # githubkit sends ``{}`` when called without arguments; mirror that.
    if body is None:
        body, raw = {}, None
    adapter = _adapter(op.body_model)
    try:
        if raw is not None:
            adapter.validate_json(raw, strict=True)
        else:
            adapter.validate_python(body)
    except ValidationError as exc:
        raise SchemaViolation(
            f"invalid body for {op.method} {op.path}: "
            + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            ),
            _pydantic_errors(exc),
        ) from None
    unknown = unknown_keys(resolve_type(op.body_model), body)
    if unknown:
        raise SchemaViolation(
            f"invalid body for {op.method} {op.path}: undeclared key(s) "
            + ", ".join(sorted(unknown)),
            [
                {"resource": "Request", "field": k, "code": "unknown_field"}
                for k in sorted(unknown)
            ],
        )
    return body


def validate_query(op: Operation, query: dict[str, str]) -> None:
    """Reject query parameters the operation does not declare or mistypes."""
    problems = []
    for key, value in query.items():
        name = key[:-2] if key.endswith("[]") else key
        if name not in op.query_params:
            problems.append(f"undeclared query parameter {key!r}")
            continue
        try:
            tp = resolve_type(op.query_params[name])
        except Exception:  # unresolvable annotation: nothing to check against
            continue
        # Only scalar parameters are checked; array params arrive as name[].
        if key.endswith("[]"):
            continue
        try:
            _scalar_adapter(op.query_params[name], tp).validate_python(value)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            problems.append(f"query parameter {key}={value!r}: {msg}")
        except _Unsupported:
            continue
    if problems:
        raise SchemaViolation(
            f"invalid query for {op.method} {op.path}: " + "; ".join(problems)
        )


class _Unsupported(Exception):
    pass


@functools.lru_cache(maxsize=None)
def _scalar_adapter(expr: str, tp: Any) -> TypeAdapter:
    from githubkit.utils import UNSET

    # Missing[X] is Union[Literal[UNSET], X]: the UNSET arm is not a query value.
    args = [
        a for a in (typing.get_args(tp) if typing.get_origin(tp) is Union else (tp,))
        if not (typing.get_origin(a) is Literal and typing.get_args(a) == (UNSET,))
    ] or [tp]
    inner = args[0] if len(args) == 1 else Union[tuple(args)]
    if typing.get_origin(inner) in (list, dict):
        raise _Unsupported
    return TypeAdapter(inner)


def validate_response(op: Operation, body: Any) -> list[str]:
    """Self-check a response body against the operation's response model.

    Returns human-readable problems (empty when fine).  Python mode (lax) is
    used because that is what githubkit itself does with GitHub's responses.
    """
    if op.response_model is None:
        return [] if body is None else [f"{op.method} {op.path} returns no body"]
    try:
        _adapter(op.response_model).validate_python(body)
    except ValidationError as exc:
        return [
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:10]
        ]
    return []


def _model_keys(model: type[BaseModel]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        keys[name] = info.annotation
        if info.alias:
            keys[info.alias] = info.annotation
    return keys


def _candidates(tp: Any) -> list[Any]:
    """Flatten Union/Optional/Missing/Annotated into their member types."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return [c for a in typing.get_args(tp) for c in _candidates(a)]
    if origin is typing.Annotated:
        return _candidates(typing.get_args(tp)[0])
    return [tp]


def unknown_keys(tp: Any, data: Any, prefix: str = "") -> set[str]:
    """Dotted paths of keys in ``data`` that the type ``tp`` does not declare.

    For unions a key is only "unknown" when no member model declares it, and we
    descend only when exactly one member can hold the value, so we never flag a
    key that some valid interpretation of the body accepts.
    """
    cands = _candidates(tp)
    if isinstance(data, dict):
        models = [
            c for c in cands if isinstance(c, type) and issubclass(c, BaseModel)
        ]
        # Free-form objects (dict[...] / Any / extra="allow" models) accept anything.
        if any(
            c is Any or typing.get_origin(c) is dict or c is dict for c in cands
        ) or any(m.model_config.get("extra") == "allow" for m in models):
            return set()
        if not models:
            return set()
        declared = [_model_keys(m) for m in models]
        # Prefer the members that declare every key; otherwise judge by all.
        fitting = [d for d in declared if set(data) <= set(d)]
        if not fitting:
            allowed = set().union(*declared)
            return {f"{prefix}{k}" for k in data if k not in allowed}
        if len(fitting) != 1:
            return set()
        out: set[str] = set()
        for k, v in data.items():
            out |= unknown_keys(fitting[0][k], v, f"{prefix}{k}.")
        return out
    if isinstance(data, list):
        item_types = [
            typing.get_args(c)[0]
            for c in cands
            if typing.get_origin(c) in (list, tuple) and typing.get_args(c)
        ]
        if len(item_types) != 1:
            return set()
        out = set()
        for i, v in enumerate(data):
            out |= unknown_keys(item_types[0], v, f"{prefix}{i}.")
        return out
    return set()
