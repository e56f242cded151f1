"""Custom-property compliance: every customer repository against the provider's policy and a source of truth.

The policy (``policy/properties.yml``) says which properties are required and which
values are allowed.  The source of truth is an export of the provider's CMDB (CSV, JSON
or YAML; a file or an http(s) URL) with one row per repository.  Property drift is
reported per repository; ``--remediate`` writes the expected values back through the
custom-property values endpoint (``--dry-run`` prints each change instead), and every
change is appended to an audit log (who, what, when).
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.config import REPOSITORY_PATTERN
from engine import properties, provenance
from engine.errors import InputError
from engine.github import GitHubAPI

EXIT_DRIFT = 3
MAX_SOURCE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Policy:
    required: tuple[str, ...] = ()
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Policy":
        """The required properties and allowed values of the property definitions (``policy/properties.yml``,
        engine/properties.py) — the same definitions ``engine properties schema`` writes to the organization.
        The older form (``required:`` + ``allowed:`` lists) is still read."""
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read policy {path}: {exc}") from None
        if isinstance(data, dict) and "properties" in data:
            definitions = properties.load(path)
            return cls(definitions.required, definitions.allowed)
        unknown = set(data) - {"required", "allowed"}
        if unknown or not isinstance(data.get("allowed", {}), dict):
            raise InputError(f"{path}: unexpected keys {sorted(unknown)}; expected 'properties' (or the older 'required' and 'allowed')")
        return cls(tuple(str(r) for r in data.get("required", [])),
                   {str(k): tuple(str(v) for v in vals) for k, vals in (data.get("allowed") or {}).items()})


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _normalize(value: Any) -> Any:
    """Multi-select values compare as sorted lists; everything else as a string."""
    if isinstance(value, list):
        return sorted(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def _redact(location: str) -> str:
    """A URL without credentials (userinfo, query) for messages."""
    if "://" not in location:
        return location
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _as_property_value(value: Any) -> Any:
    """Expected values as GitHub stores them: strings, or lists of strings (multi-select)."""
    if isinstance(value, list):
        return [_as_property_value(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def load_source(location: str) -> dict[str, dict[str, Any]]:
    """A CMDB export: ``{repository: {property: expected value}}``.

    CSV: a ``repository`` column and one column per property (multi-select values
    separated by ``|``; an empty cell means "no expectation").  JSON/YAML: a list of
    objects with ``repository`` and the properties, or a mapping repository → properties.
    """
    if location.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(location, timeout=15) as resp:  # noqa: S310 - the provider's own CMDB URL
                raw = resp.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot fetch the source of truth {_redact(location)}: {type(exc).__name__}") from None
        name = location.split("?", 1)[0]
    else:
        path = Path(location)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the source of truth {location}: {exc.strerror}") from None
        name = path.name
    if len(raw) > MAX_SOURCE_BYTES:
        raise InputError(f"source of truth {_redact(location)} is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InputError(f"{_redact(location)}: not UTF-8 text (byte {exc.start})") from None
    rows: list[dict[str, Any]]
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "repository" not in reader.fieldnames:
            raise InputError(f"{_redact(location)}: a CSV source of truth needs a 'repository' column")
        rows = []
        for row in reader:
            rows.append({k: (v.split("|") if v and "|" in v else v) for k, v in row.items() if k and v not in (None, "")})
    else:
        # YAML 1.1 would read `1.10` as the number 1.1: load scalars as strings (BaseLoader)
        # JSON numbers keep their text too: 1.10 is the release line "1.10", not 1.1
        try:
            data = (json.loads(text, parse_float=str, parse_int=str) if name.endswith(".json")
                    else yaml.load(text, Loader=yaml.BaseLoader))
        except (ValueError, yaml.YAMLError) as exc:
            raise InputError(f"{_redact(location)}: not valid {'JSON' if name.endswith('.json') else 'YAML'}: {str(exc).splitlines()[0][:200]}") from None
        if isinstance(data, dict):
            rows = [{"repository": repo, **(props or {})} for repo, props in data.items()]
        elif isinstance(data, list):
            rows = [r for r in data if isinstance(r, dict)]
        else:
            raise InputError(f"{_redact(location)}: expected a list of rows or a mapping of repositories")
    result: dict[str, dict[str, Any]] = {}
    import re

    first = 2 if name.endswith(".csv") else 1  # a CSV's line 1 is its header; JSON/YAML rows count from 1
    for number, row in enumerate(rows, start=first):
        repo = str(row.get("repository", ""))
        if not re.fullmatch(REPOSITORY_PATTERN, repo):
            raise InputError(f"{_redact(location)}: row {number}: {repo[:60]!r} is not an owner/name repository")
        result[repo] = {k: _as_property_value(v) for k, v in row.items() if k != "repository"}
    return result


@dataclass
class Finding:
    repository: str
    property: str
    actual: Any
    expected: Any
    reason: str

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class RepoCompliance:
    repository: str
    customer: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    remediated: list[dict] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.remediated and not [f for f in self.findings if f.expected is None]:
            return "remediated"
        return "drifted" if self.findings else "compliant"

    def to_dict(self) -> dict:
        return {"repository": self.repository, "customer": self.customer, "state": self.state, "error": self.error,
                "findings": [f.to_dict() for f in self.findings], "remediated": self.remediated}


@dataclass
class ComplianceReport:
    repos: list[RepoCompliance]
    dry_run: bool = False
    planned_writes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(r.state == "error" for r in self.repos):
            return 1
        return EXIT_DRIFT if any(r.state == "drifted" for r in self.repos) else 0

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "exit_code": self.exit_code, "repositories": [r.to_dict() for r in self.repos],
                "planned_writes": self.planned_writes}


def check(repository: str, actual: dict[str, Any], policy: Policy, expected: dict[str, Any] | None) -> list[Finding]:
    """Findings for one repository: policy violations and differences from the source of truth."""
    findings: list[Finding] = []
    expected = expected or {}
    for name in policy.required:
        if actual.get(name) in (None, "", []) and name not in expected:
            findings.append(Finding(repository, name, None, None, "required property is not set"))
    for name, value in actual.items():
        allowed = policy.allowed.get(name)
        if allowed and value is not None and any(v not in allowed for v in _as_list(value)):
            bad = [v for v in _as_list(value) if v not in allowed]
            if name not in expected:
                findings.append(Finding(repository, name, value, None, f"value {', '.join(bad)} is not allowed (allowed: {', '.join(allowed)})"))
    for name, want in expected.items():
        have = actual.get(name)
        allowed = policy.allowed.get(name)
        bad = [v for v in _as_list(want) if allowed and v not in allowed]
        if bad:  # the source of truth itself is wrong: reported, never written to the repository
            findings.append(Finding(repository, name, have, None, f"the source of truth's value {', '.join(bad)} is not allowed "
                                                                  f"(allowed: {', '.join(allowed)})"))
            continue
        if isinstance(have, list) or isinstance(want, list):
            # a multi-select property: a single CSV value is a one-element selection
            differs = sorted(_as_list(have)) != sorted(_as_list(want))
            want = _as_list(want)
        else:
            differs = _normalize(have) != _normalize(want)
        if differs:
            findings.append(Finding(repository, name, have, want, "differs from the source of truth"))
    return findings


def scan(api: GitHubAPI, tenants: list[tuple[str, str]], policy: Policy, source: dict[str, dict[str, Any]] | None,
         remediate: bool, audit_log: Path, actor: str | None = None) -> ComplianceReport:
    """Check every ``(customer, repository)``; with ``remediate``, write expected values back."""
    report = ComplianceReport(repos=[], dry_run=api.dry_run)
    who = actor or provenance.actor()
    for customer, repository in tenants:
        entry = RepoCompliance(repository, customer)
        report.repos.append(entry)
        try:
            actual = api.custom_properties(repository)
        except Exception as exc:  # noqa: BLE001 - one unreadable repository must not stop the scan
            entry.error = f"cannot read custom properties: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            continue
        entry.findings = check(repository, actual, policy, (source or {}).get(repository))
        fixes = {f.property: f.expected for f in entry.findings if f.expected is not None}
        if remediate and fixes:
            before = len(api.planned)
            try:
                api.set_custom_properties(repository, fixes)
            except Exception as exc:  # noqa: BLE001
                entry.error = f"remediation failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                continue
            report.planned_writes += [w.describe() for w in api.planned[before:]]
            if not api.dry_run:
                record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "who": who, "repository": repository,
                          "customer": customer, "changes": [{"property": f.property, "from": f.actual, "to": f.expected}
                                                            for f in entry.findings if f.expected is not None]}
                entry.remediated = record["changes"]
                audit_log.parent.mkdir(parents=True, exist_ok=True)
                with open(audit_log, "a") as fh:
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
    return report
