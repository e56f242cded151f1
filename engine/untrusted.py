"""Text nobody here wrote, made safe to print.

Customer files, tenant records, event payloads and tool output carry text from outside.
Printed as it is, it can do things instead of showing them:

- a control character (ESC, CR, backspace, C1 controls such as CSI) moves an operator's
  cursor, recolours or retitles the terminal, or hides the text before it;
- a format character (the bidi override U+202E, zero-width spaces, U+2028/U+2029 line
  separators) makes a key read differently from what it is;
- the GitHub Actions runner treats a line that starts with ``::`` after leading
  whitespace (``::error::``, ``::stop-commands::``, ``::add-mask::``) and any ``##[`` in
  a line (``##[error]``) as a workflow command, so a key with a newline in it could
  write annotations, hide the rest of the log or stop command processing in the
  manager's job log.

The functions here show such text as visible escapes (``\\x1b``, ``\\u202e``, ``\\n``) and
break workflow commands, so it reads as what it is and does nothing.  They are
idempotent: escaping escaped text changes nothing.  Backslashes are left as they are
(the output is for people to read, not to decode).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["escape_inline", "escape_lines", "neutralize_json"]

# Control (Cc), format (Cf: bidi controls, zero-width characters, soft hyphen…),
# surrogate (Cs: cannot even be encoded to UTF-8), line/paragraph separator (Zl, Zp) and
# unassigned (Cn: may become any of these in a later Unicode version).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The runner's legacy command syntax matches ``##[`` anywhere in a line.
_LEGACY_COMMAND = re.compile(r"##\[")


def _escape_char(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escape_chars(text: str, keep: str) -> str:
    if text.isprintable():  # fast path: no controls, no format characters, no separators
        return text
    return "".join(
        char if char in keep or char.isprintable() or unicodedata.category(char) not in _UNSAFE_CATEGORIES
        else _escape_char(char)
        for char in text
    )


def _neutralize_line(line: str) -> str:
    line = _LEGACY_COMMAND.sub(r"#\\x23[", line)
    # The runner strips leading whitespace before looking for ``::``.
    stripped = line.lstrip()
    if stripped.startswith("::"):
        indent = line[: len(line) - len(stripped)]
        line = indent + "\\x3a" + stripped[1:]
    return line


def escape_inline(text: object) -> str:
    """One piece of untrusted text (a key, a name, a value, a reason) shown inside one line.

    Every control, format and separator character becomes a visible escape — newline and
    tab included, so the result is always a single line — and workflow commands for the
    GitHub Actions runner (a leading ``::``, any ``##[``) are broken.  Never raises.
    """
    return _neutralize_line(_escape_chars(str(text), keep=""))


def escape_lines(text: object) -> str:
    """Untrusted text whose newlines and tabs are layout (a multi-line error message).

    Like ``escape_inline`` for each line, but ``\\n`` and ``\\t`` stay as they are; any
    other line break (CR, U+2028, U+0085…) is escaped, so the lines a reader sees are
    exactly the ``\\n``-separated ones.  Never raises.
    """
    escaped = _escape_chars(str(text), keep="\n\t")
    return "\n".join(_neutralize_line(line) for line in escaped.split("\n"))


def neutralize_json(json_text: str) -> str:
    """JSON text (from ``json.dumps`` with the default ``ensure_ascii=True``) safe for a job log.

    ``json.dumps`` already escapes control and non-ASCII characters and never starts a
    line with ``::``; this also rewrites ``##[`` inside strings as ``#\\u0023[``, which
    decodes to the same value.
    """
    return json_text.replace("##[", "#\\u0023[")
