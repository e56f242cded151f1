"""Load YAML documents safely and remember where every key came from.

Customer files come from customer repositories, so this loader trusts nothing:
size and nesting are capped, anchors/aliases (billion-laughs) and explicit tags
(``!!python/object``, ``!Ref``…) are refused, duplicate keys are errors (PyYAML
silently keeps the last one), and only one document is allowed.  Every node's line
is kept so validation errors can name file, line and key path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import DOCUMENT, ConfigError, Problem
from engine.untrusted import escape_inline

# libyaml's parser when PyYAML was built with it (the wheels are): same events and marks, ~5× faster.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 256 * 1024
MAX_DEPTH = 16
MAX_NODES = 20_000

KeyPath = tuple[str | int, ...]

# Tags PyYAML resolves implicitly for plain scalars; anything else was written explicitly.
_IMPLICIT_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:timestamp",
}


@dataclass
class Document:
    """A parsed YAML mapping plus the line of every key path in it."""

    name: str
    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def format_key_path(path: KeyPath) -> str:
    """``environments.staging.tags[0]`` — for people to read.

    Keys come from customer files and may hold any character YAML allows (a quoted key can
    contain a newline, ESC or U+202E), so each is escaped with ``escape_inline``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + escape_inline(part)
    return out


def load_file(path: Path | str, display_name: str | None = None) -> Document:
    """Read and parse ``path``.  Raises ``ConfigError`` naming the file on any problem."""
    path = Path(path)
    name = display_name or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ConfigError([Problem(name, None, "", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read file: {exc.strerror}")]) from None
    if not path.is_file():
        raise ConfigError([Problem(name, None, "", "not a regular file")])
    if size > MAX_BYTES:
        raise ConfigError([Problem(name, 1, DOCUMENT, f"file is {size} bytes; the limit is {MAX_BYTES}")])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # the file may have grown since stat(); load_text refuses the excess
    except OSError as exc:
        raise ConfigError([Problem(name, None, DOCUMENT, f"cannot read file: {exc.strerror}")]) from None
    return load_text(raw, name)


def load_text(raw: bytes | str, name: str) -> Document:
    """Parse YAML text.  Raises ``ConfigError`` with file, line, key path and reason."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise ConfigError([Problem(name, 1, DOCUMENT, f"document is {len(raw)} bytes; the limit is {MAX_BYTES}")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError([Problem(name, line, DOCUMENT, f"not valid UTF-8 (byte {exc.start})")]) from None
    else:
        text = raw
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            raise ConfigError([Problem(name, 1, DOCUMENT, f"document is larger than the limit of {MAX_BYTES} bytes")])
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError([Problem(name, line, DOCUMENT, "document contains a NUL byte")])

    _check_events(text, name)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_problem_from_yaml_error(exc, name, text)]) from None
    if node is None:
        raise ConfigError([Problem(name, 1, DOCUMENT, "document is empty")])
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    data = _construct(node, (), lines, name)
    return Document(name=name, data=data, lines=lines)


def _problem_from_yaml_error(exc: yaml.YAMLError, name: str, text: str) -> Problem:
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    mark = problem_mark or context_mark
    line = mark.line + 1 if mark is not None else 1
    reason = getattr(exc, "problem", None) or _first_line(exc)
    context = getattr(exc, "context", None)
    if context:
        reason = f"{context}: {reason}"
    # The parser knows no keys; find the key whose value the broken text belongs to.
    key_line = (context_mark or mark).line + 1 if (context_mark or mark) is not None else line
    return Problem(name, line, _key_path_at_line(text, key_line) or DOCUMENT, f"YAML syntax error: {reason}")


def _first_line(exc: Exception) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _key_path_at_line(text: str, line: int) -> str:
    """Best-effort key path of block-style YAML at ``line`` (1-based), from indentation."""
    stack: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines()[:line], start=1):
        stripped = raw.lstrip(" ")
        if not stripped or stripped.startswith(("#", "-", "\t")) or ":" not in stripped:
            continue
        key = stripped.split(":", 1)[0].strip().strip("'\"")
        if not key or " #" in key:
            continue
        indent = len(raw) - len(stripped)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
    return ".".join(k for _, k in stack)


class _Frame:
    __slots__ = ("is_map", "key", "expect_key", "index")

    def __init__(self, is_map: bool):
        self.is_map = is_map
        self.key: str | int | None = None
        self.expect_key = is_map
        self.index = -1


def _check_events(text: str, name: str) -> None:
    """Walk the event stream once, before building anything, to refuse hostile shapes."""
    frames: list[_Frame] = []
    documents = 0
    count = 0

    def path() -> str:
        keys = tuple(f.key for f in frames if f.key is not None and not (f.is_map and f.expect_key))
        return format_key_path(keys) or DOCUMENT

    def fail(line: int, reason: str) -> None:
        raise ConfigError([Problem(name, line, path(), reason)])

    try:
        for event in yaml.parse(text, Loader=_Loader):
            count += 1
            line = event.start_mark.line + 1
            if count > MAX_NODES:
                fail(line, f"document has more than {MAX_NODES} nodes")
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    fail(line, "only one YAML document is allowed (found '---' starting another)")
                continue
            if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent,
                                      yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                continue
            top = frames[-1] if frames else None
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frames.pop()
                _value_done(frames)
                continue
            if top is not None and top.is_map and top.expect_key:
                if not isinstance(event, yaml.ScalarEvent):
                    fail(line, "keys must be plain strings")
                top.key = event.value
                top.expect_key = False
                _check_node(event, line, fail)
                continue
            if top is not None and not top.is_map:
                top.index += 1
                top.key = top.index
            _check_node(event, line, fail)
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                frames.append(_Frame(isinstance(event, yaml.MappingStartEvent)))
                if len(frames) > MAX_DEPTH:
                    fail(line, f"document is nested deeper than {MAX_DEPTH} levels")
            else:
                _value_done(frames)
    except yaml.YAMLError as exc:
        raise ConfigError([_problem_from_yaml_error(exc, name, text)]) from None


def _value_done(frames: list[_Frame]) -> None:
    if frames and frames[-1].is_map:
        frames[-1].expect_key = True


def _check_node(event: yaml.Event, line: int, fail) -> None:
    if isinstance(event, yaml.AliasEvent):
        fail(line, f"YAML aliases (*{event.anchor}) are not allowed")
    anchor = getattr(event, "anchor", None)
    if anchor:
        fail(line, f"YAML anchors (&{anchor}) are not allowed")
    tag = getattr(event, "tag", None)
    if tag and tag != "!" and tag not in _IMPLICIT_TAGS:
        fail(line, f"YAML tag {tag!r} is not allowed")


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError([Problem(name, line, format_key_path(path) or DOCUMENT, "keys must be plain strings")])
            if key_node.tag == "tag:yaml.org,2002:merge" or key_node.value == "<<":
                raise ConfigError([Problem(name, line, format_key_path(path) or DOCUMENT, "YAML merge keys (<<) are not allowed")])
            key = _scalar(key_node, name, path)
            if not isinstance(key, str):
                key = key_node.value  # `1: x` or `true: x` — keep the text, validation decides
            child = path + (key,)
            if key in result:
                raise ConfigError([Problem(name, line, format_key_path(child), "duplicate key (it is already set above)")])
            lines[child] = line
            result[key] = _construct(value_node, child, lines, name)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = path + (index,)
            lines[child] = item.start_mark.line + 1
            items.append(_construct(item, child, lines, name))
        return items
    return _scalar(node, name, path)


def _scalar(node: yaml.Node, name: str, path: KeyPath) -> Any:
    constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
    yaml.constructor.SafeConstructor.__init__(constructor)
    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        reason = getattr(exc, "problem", None) or _first_line(exc)
        raise ConfigError([Problem(name, node.start_mark.line + 1, format_key_path(path) or DOCUMENT, f"invalid value: {reason}")]) from None
