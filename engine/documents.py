"""Load YAML documents safely and remember where every key came from.

Customer files come from customer repositories, so this loader trusts nothing:
size and nesting are capped, anchors/aliases (billion-laughs) and explicit tags
(``!!python/object``, ``!Ref``…) are refused, duplicate keys are errors (PyYAML
silently keeps the last one), and only one document is allowed.  Plain scalars are read
as YAML 1.2 reads them, as editors do: ``yes``/``no``/``on``/``off`` are text, not booleans.
Every node's line is kept so validation errors can name file, line and key path.
"""

from __future__ import annotations

import os
import re
import stat
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
    return load_text(read_file(path, name), name)


def read_file(path: Path | str, name: str) -> bytes:
    """The bytes of the regular file ``path`` (at most ``MAX_BYTES + 1``; ``load_text`` refuses the excess).

    Raises ``ConfigError`` naming the file as ``name`` if it is missing, not a regular file, too large or unreadable.
    """
    if not isinstance(path, Path):
        path = Path(path)  # as the caller's Path would name it ('' is '.')
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError([Problem(name, None, "", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read file: {exc.strerror}")]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([Problem(name, None, "", "not a regular file")])
    size = info.st_size
    if size > MAX_BYTES:
        raise ConfigError([Problem(name, 1, DOCUMENT, f"file is {size} bytes; the limit is {MAX_BYTES}")])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # What stat() saw and one byte more (not a MAX_BYTES buffer for a 200-byte file), then on to the end
            # of the file, at most one byte over the limit (it may have grown since stat(); load_text refuses that).
            raw = os.read(fd, size + 1)
            while len(raw) <= MAX_BYTES:
                more = os.read(fd, MAX_BYTES + 1 - len(raw))
                if not more:
                    break
                raw += more
            return raw
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError([Problem(name, None, DOCUMENT, f"cannot read file: {exc.strerror}")]) from None


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

    return _Reader(name).read(text)


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


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# What each event is to the reader; stream and document events frame the content (0).
_SCALAR, _ALIAS, _MAPPING, _SEQUENCE, _END, _DOCUMENT = range(1, 7)
_KINDS = {yaml.ScalarEvent: _SCALAR, yaml.AliasEvent: _ALIAS, yaml.MappingStartEvent: _MAPPING, yaml.SequenceStartEvent: _SEQUENCE,
          yaml.MappingEndEvent: _END, yaml.SequenceEndEvent: _END, yaml.DocumentStartEvent: _DOCUMENT}


class _Frame:
    """An open mapping or sequence: where the reader is in it, and (while building) its value."""

    __slots__ = ("is_map", "key", "expect_key", "index", "value", "path")

    def __init__(self, is_map: bool, value: dict | list | None, path: KeyPath):
        self.is_map = is_map
        self.key: str | int | None = None  # the key being read (mapping) or the last item's index (sequence)
        self.expect_key = is_map
        self.index = -1
        self.value = value
        self.path = path


class _Reader:
    """One pass over the event stream: refuse hostile shapes, build the value and remember every key's line.

    The parser is libyaml's; scalars are resolved by YAML 1.2's core schema (``_CoreResolver``) and constructed by
    PyYAML's safe constructor.  A hostile
    shape or a syntax error anywhere in the text is reported before a problem found while building (a
    duplicate key, a merge key, a scalar that cannot be constructed): the first such problem is held back
    until the whole stream has been checked, and nothing more is built after it.  (This loop runs for
    every event of every file a fleet plan reads, so it keeps its state in locals.)
    """

    def __init__(self, name: str):
        self.name = name
        self.frames: list[_Frame] = []
        self.scalars = _Scalars()
        self.held: Exception | None = None  # the first problem found while building

    def read(self, text: str) -> Document:
        frames = self.frames
        lines: dict[KeyPath, int] = {}
        resolve = self.scalars.resolve
        root: list[Any] = []  # the document's value, once it has started
        top: _Frame | None = None  # frames[-1]
        documents = count = 0
        parser = _Loader(text)  # the loop of yaml.parse(), without a generator in between
        try:
            while parser.check_event():
                event = parser.get_event()
                count += 1
                if count > MAX_NODES:
                    self._fail(event, f"document has more than {MAX_NODES} nodes")
                kind = _KINDS.get(type(event), 0)
                if kind == _END:
                    frames.pop()
                    top = frames[-1] if frames else None
                    if top is not None and top.is_map:
                        top.expect_key = True
                    continue
                if kind < _SCALAR or kind > _SEQUENCE:
                    if kind == _DOCUMENT:
                        documents += 1
                        if documents > 1:
                            self._fail(event, "only one YAML document is allowed (found '---' starting another)")
                    continue
                is_key = top is not None and top.expect_key
                if is_key and kind != _SCALAR:
                    self._fail(event, "keys must be plain strings")
                if top is not None and not top.is_map:
                    top.index += 1
                    top.key = top.index
                elif is_key:
                    top.key = event.value
                    top.expect_key = False
                if kind == _ALIAS or event.anchor or (event.tag and event.tag != "!" and event.tag not in _IMPLICIT_TAGS):
                    self._refuse(event, kind)

                if kind == _SCALAR:
                    if self.held is None:
                        tag = event.tag
                        if tag is None or tag == "!":  # as the composer does: the tag the plain or quoted text implies
                            tag = resolve(yaml.ScalarNode, event.value, event.implicit)
                        if is_key:
                            self._key(top, event, tag, lines)
                            continue
                        # A string is the text itself (what the str constructor returns); most scalars are.
                        value = event.value if tag == _STR_TAG else self._scalar(event, tag, top.path + (top.key,) if top is not None else ())
                    elif is_key:
                        continue
                    else:
                        value = None
                else:
                    value = {} if kind == _MAPPING else []
                    path = top.path + (top.key,) if top is not None else ()

                if top is None:
                    lines[()] = event.start_mark.line + 1
                    root.append(value)
                elif self.held is None:
                    if top.is_map:
                        top.value[top.key] = value
                    else:
                        lines[top.path + (top.index,)] = event.start_mark.line + 1
                        top.value.append(value)
                if kind == _SCALAR:
                    if top is not None and top.is_map:
                        top.expect_key = True
                else:
                    top = _Frame(kind == _MAPPING, value, path)
                    frames.append(top)
                    if len(frames) > MAX_DEPTH:
                        self._fail(event, f"document is nested deeper than {MAX_DEPTH} levels")
        except yaml.YAMLError as exc:
            raise ConfigError([_problem_from_yaml_error(exc, self.name, text)]) from None
        finally:
            parser.dispose()
        if self.held is not None:
            raise self.held
        if not root:
            raise ConfigError([Problem(self.name, 1, DOCUMENT, "document is empty")])
        return Document(name=self.name, data=root[0], lines=lines)

    def _key(self, frame: _Frame, event: yaml.ScalarEvent, tag: str, lines: dict[KeyPath, int]) -> None:
        """A mapping key: a plain string, not a merge, not set before; its line is remembered."""
        line = event.start_mark.line + 1
        if tag == _MERGE_TAG or event.value == "<<":
            self.held = ConfigError([Problem(self.name, line, format_key_path(frame.path) or DOCUMENT, "YAML merge keys (<<) are not allowed")])
            return
        key = event.value if tag == _STR_TAG else self._scalar(event, tag, frame.path)
        if self.held is not None:
            return
        if not isinstance(key, str):
            key = event.value  # `1: x` or `true: x` — keep the text, validation decides
        frame.key = key
        child = frame.path + (key,)
        if key in frame.value:
            self.held = ConfigError([Problem(self.name, line, format_key_path(child), "duplicate key (it is already set above)")])
            return
        lines[child] = line

    def _scalar(self, event: yaml.ScalarEvent, tag: str, path: KeyPath) -> Any:
        """A scalar that is not a plain string, made by PyYAML's safe constructor (``None`` once a problem is held)."""
        try:
            return self.scalars.value(event, tag, self.name, path)
        except (ConfigError, yaml.YAMLError) as exc:  # held, and raised as it is once the stream has been checked
            self.held = exc
            return None
        except Exception:  # noqa: BLE001 — PyYAML's constructors crash on some tagged values (``!!int`` with no value)
            kind = tag.rsplit(":", 1)[-1]
            self.held = ConfigError([Problem(self.name, event.start_mark.line + 1, format_key_path(path) or DOCUMENT,
                                             f"{event.value!r} cannot be read as {kind}")])
            return None

    def _path(self) -> str:
        keys = tuple(f.key for f in self.frames if f.key is not None and not (f.is_map and f.expect_key))
        return format_key_path(keys) or DOCUMENT

    def _fail(self, event: yaml.Event, reason: str) -> None:
        raise ConfigError([Problem(self.name, event.start_mark.line + 1, self._path(), reason)])

    def _refuse(self, event: yaml.Event, kind: int) -> None:
        if kind == _ALIAS:
            self._fail(event, f"YAML aliases (*{event.anchor}) are not allowed")
        if event.anchor:
            self._fail(event, f"YAML anchors (&{event.anchor}) are not allowed")
        self._fail(event, f"YAML tag {event.tag!r} is not allowed")


_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _NULL_TAG = (f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float", "null"))
# YAML 1.2's core schema (yaml.org/spec/1.2.2, 10.3.2): what editors and other YAML 1.2 readers take a plain scalar for.
# PyYAML follows YAML 1.1, where yes/no/on/off are booleans, 1_000 and 1:30 integers and 2024-01-01 a date; an
# editor checking the file against `engine schema` sees text there, so the engine reads them as text too.
_CORE_BOOL = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_CORE_INT = re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_CORE_FLOAT = re.compile(r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z")
_CORE_NULL = re.compile(r"(?:~|null|Null|NULL|)\Z")


class _CoreResolver(yaml.resolver.BaseResolver):
    """Resolves plain scalars by YAML 1.2's core schema (keeping ``<<`` recognisable, so it is refused as a merge key)."""


for _tag, _pattern, _first in [
    (_BOOL_TAG, _CORE_BOOL, "tTfF"),
    (_INT_TAG, _CORE_INT, "-+0123456789"),  # before float: "1" is an integer
    (_FLOAT_TAG, _CORE_FLOAT, "-+0123456789."),
    (_NULL_TAG, _CORE_NULL, ["~", "n", "N", ""]),
    (_MERGE_TAG, re.compile(r"<<\Z"), "<"),
]:
    _CoreResolver.add_implicit_resolver(_tag, _pattern, list(_first))


class _Scalars(yaml.constructor.SafeConstructor, _CoreResolver):
    """Scalars resolved by YAML 1.2's core schema and constructed by PyYAML's safe constructor (one per document).

    Explicitly tagged scalars (``!!bool``, ``!!int``, ``!!float``) must be written as the core schema writes them.
    """

    def __init__(self) -> None:
        yaml.constructor.SafeConstructor.__init__(self)
        _CoreResolver.__init__(self)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        if not _CORE_BOOL.match(node.value):
            raise ValueError(f"{node.value!r} cannot be read as bool: write true or false")
        return node.value.lower() == "true"

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = node.value
        if not _CORE_INT.match(text):
            raise ValueError(f"{text!r} cannot be read as int: write digits, 0o octal or 0x hexadecimal")
        return int(text[2:], 8 if text[1] == "o" else 16) if text[:2] in ("0o", "0x") else int(text, 10)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        if not (_CORE_FLOAT.match(node.value) or _CORE_INT.match(node.value)):
            raise ValueError(f"{node.value!r} cannot be read as float")
        if _CORE_INT.match(node.value):
            return float(self.construct_yaml_int(node))
        return super().construct_yaml_float(node)

    def value(self, event: yaml.ScalarEvent, tag: str, name: str, path: KeyPath) -> Any:
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = getattr(exc, "problem", None) or _first_line(exc)
            raise ConfigError([Problem(name, event.start_mark.line + 1, format_key_path(path) or DOCUMENT, f"invalid value: {reason}")]) from None


for _tag, _construct in [(_BOOL_TAG, _Scalars.construct_yaml_bool), (_INT_TAG, _Scalars.construct_yaml_int), (_FLOAT_TAG, _Scalars.construct_yaml_float)]:
    _Scalars.add_constructor(_tag, _construct)


class _Dumper(yaml.SafeDumper):
    """Writes YAML that reads back the same with the engine's YAML 1.2 loader *and* with YAML 1.1 readers:
    a string either would take for something else (``0o17``, ``yes``, ``1.10``) is quoted."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if _CoreResolver().resolve(yaml.ScalarNode, data, (True, False)) != _STR_TAG:
            return self.represent_scalar(_STR_TAG, data, style="'")
        return super().represent_str(data)


_Dumper.add_representer(str, _Dumper.represent_str)


def dump_yaml(data: object) -> str:
    """``data`` as block-style YAML (flow style for lists of scalars), keys in the given order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=False)
