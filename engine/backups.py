"""State backups: the stack's state kept before (and after) every deploy, encrypted with the customer's own secret.

A backup is one object in the customer's own state location, beside the state it protects:
``<state dir>/backups/<environment>/<id>.bak`` for ``file://`` backends, the same key under the customer's prefix
for ``s3://`` ones.  Only the last ``keep`` per stack stay (``ENGINE_STATE_BACKUPS``, default 10); a state equal to
the newest backup is not kept twice.

Encryption: the customer's passphrase (``EngineHome.passphrase``, the secret that already protects the secrets in
its state) is stretched once per process with scrypt (n=2^15, r=8, p=1, salted with the customer id); each backup
gets its own key from that with HKDF-SHA256 and a random salt, and is sealed with AES-256-GCM (random 96-bit
nonce).  The header (id, stack, tool, when, the state's serial or write time: what listing shows) is
authenticated as the cipher's associated data, so it cannot be edited without the backup failing to open.  A
keyed digest (HMAC-SHA256 under another HKDF key) of the state lets the newest backup be compared without
decrypting it.  Without the passphrase a backup is noise; another customer's passphrase cannot open it.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from engine.errors import InputError, OperationError
from engine.home import state_path

MAGIC = b"MIE-STATE-BACKUP/1\n"
DEFAULT_KEEP = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_ID_CHARS = set("0123456789abcdefTZ-")


def keep_from_env() -> int:
    """How many backups each stack keeps: ``ENGINE_STATE_BACKUPS`` (1-1000; default 10).  Bad values are exit 2."""
    raw = os.environ.get("ENGINE_STATE_BACKUPS", "").strip()
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise InputError(f"ENGINE_STATE_BACKUPS must be a whole number from 1 to 1000, not {raw[:20]!r}")
    return int(raw)


@dataclass(frozen=True)
class Stamp:
    """How new a state is: Terraform's ``serial`` and ``lineage``; Pulumi's checkpoint time (``manifest.time``)."""

    serial: int | None = None
    lineage: str | None = None
    written_at: str | None = None
    resources: int | None = None

    def newer_than(self, other: "Stamp") -> str | None:
        """Why this (live) state is newer than ``other`` (a backup's), or None when it is not."""
        if self.lineage and other.lineage and self.lineage != other.lineage:
            return f"the live state has another lineage ({self.lineage}) than the backup ({other.lineage})"
        if self.serial is not None and other.serial is not None and self.serial > other.serial:
            return f"the live state is at serial {self.serial}, the backup at {other.serial}"
        if self.written_at and other.written_at and self.written_at > other.written_at:
            return f"the live state was written at {self.written_at}, after the backup's state ({other.written_at})"
        return None


@dataclass(frozen=True)
class Backup:
    """One backup's header: what ``engine state backups`` lists (nothing secret)."""

    id: str
    stack: str  # customer/environment
    tool: str
    taken_at: str
    reason: str  # before-up | after-up | before-restore
    serial: int | None = None
    lineage: str | None = None
    written_at: str | None = None
    resources: int | None = None
    size: int = 0
    location: str = ""

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.serial, self.lineage, self.written_at, self.resources)

    def to_dict(self) -> dict:
        return asdict(self)


class _Objects(Protocol):
    """Where backup objects live (a directory, an S3 prefix)."""

    where: str

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def head(self, name: str, size: int) -> bytes | None: ...
    def names(self) -> list[str]: ...
    def delete(self, name: str) -> None: ...


class _Directory:
    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)

    def put(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path / f".{name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.path / name)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def head(self, name: str, size: int) -> bytes | None:
        try:
            with open(self.path / name, "rb") as fh:
                return fh.read(size)
        except FileNotFoundError:
            return None

    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.glob("*.bak")) if self.path.is_dir() else []

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


class _S3Prefix:
    """Backups under the customer's own S3 prefix (boto3; the credentials are the engine's AWS_* environment)."""

    def __init__(self, url: str, environment: str):
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.bucket = parts.netloc
        self.prefix = f"{unquote(parts.path).strip('/')}/backups/{environment}/".lstrip("/")
        self.where = f"s3://{self.bucket}/{self.prefix}"
        import boto3  # only for S3 state
        from botocore.config import Config

        self._client = boto3.client("s3", region_name=query.get("region"), endpoint_url=query.get("endpoint"),
                                    config=Config(s3={"addressing_style": "path" if query.get("use_path_style") == "true" else "auto"},
                                                  connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}))

    def put(self, name: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def get(self, name: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None

    def head(self, name: str, size: int) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.prefix + name, Range=f"bytes=0-{size - 1}")["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return None

    def names(self) -> list[str]:
        out: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            out += [o["Key"][len(self.prefix):] for o in page.get("Contents", []) if o["Key"].endswith(".bak")]
        return sorted(n for n in out if "/" not in n)

    def delete(self, name: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.prefix + name)


@functools.lru_cache(maxsize=64)
def _master_key(passphrase: str, customer: str) -> bytes:
    """The customer's backup key: scrypt once per process (it is slow on purpose), salted with the customer id."""
    return Scrypt(salt=f"managed-infra-engine/state-backups/{customer}".encode(), length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode())


def _subkey(master: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(master)


HEADER_MAX = 4096


class BackupStore:
    """The backups of one stack (customer × environment) in the customer's own state location."""

    def __init__(self, backend_url: str, customer: str, environment: str, passphrase: str, keep: int = DEFAULT_KEEP):
        self.customer, self.environment, self.keep = customer, environment, keep
        self._passphrase = passphrase
        local = state_path(backend_url)
        scheme = urlsplit(backend_url).scheme
        if local is not None:
            self._objects: _Objects = _Directory(local / "backups" / environment)
        elif scheme == "s3":
            self._objects = _S3Prefix(backend_url, environment)
        else:
            raise InputError(f"state backups do not support {scheme}:// state locations")

    @property
    def where(self) -> str:
        return self._objects.where

    def _digest(self, state: bytes) -> str:
        key = _subkey(_master_key(self._passphrase, self.customer), b"", b"state-backup digest v1")
        return hmac.new(key, state, hashlib.sha256).hexdigest()

    # -- writing -------------------------------------------------------------

    def save(self, tool: str, state: bytes, reason: str, stamp: Stamp) -> Backup | None:
        """Keep ``state`` as the newest backup; None when the newest backup holds exactly these bytes (the state before
        an up is usually the one kept after the previous up).  Older backups beyond ``keep`` are removed.
        Raises ``OperationError`` when the backup cannot be written."""
        digest = self._digest(state)
        newest = self.list()[:1]
        if newest and self._header(newest[0].id).get("digest") == digest:
            return None
        now = dt.datetime.now(dt.timezone.utc)
        if newest:  # ids sort as the backups were taken, also within one clock tick
            last = dt.datetime.strptime(newest[0].id.split("Z-", 1)[0], "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.timezone.utc)
            now = max(now, last + dt.timedelta(microseconds=1))
        backup_id = now.strftime("%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(3)
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        header = {"id": backup_id, "stack": f"{self.customer}/{self.environment}", "tool": tool,
                  "taken_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": reason, **asdict(stamp), "size": len(state),
                  "digest": digest, "kdf": {"name": "scrypt+hkdf-sha256", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                                            "salt": base64.b64encode(salt).decode()}, "cipher": "AES-256-GCM"}
        head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        key = _subkey(_master_key(self._passphrase, self.customer), salt, b"state-backup v1")
        sealed = AESGCM(key).encrypt(nonce, state, MAGIC + head)
        try:
            self._objects.put(f"{backup_id}.bak", MAGIC + head + b"\n" + nonce + sealed)
            for old in self.list()[self.keep:]:
                self._objects.delete(f"{old.id}.bak")
        except OSError as exc:
            raise OperationError(f"could not write a state backup of {self.customer}/{self.environment} to {self.where}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - boto3's errors: said plainly, no traceback
            raise OperationError(f"could not write a state backup of {self.customer}/{self.environment} to {self.where}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
        return self._backup(header)

    def clear(self) -> None:
        """Remove every backup of the stack (after ``destroy``: there is nothing left for them to restore)."""
        for name in self._objects.names():
            self._objects.delete(name)
        if isinstance(self._objects, _Directory):
            for directory in (self._objects.path, self._objects.path.parent):
                try:
                    directory.rmdir()
                except OSError:
                    break

    # -- reading -------------------------------------------------------------

    def _header(self, backup_id: str) -> dict:
        raw = self._objects.head(f"{backup_id}.bak", len(MAGIC) + HEADER_MAX)
        if not raw or not raw.startswith(MAGIC) or b"\n" not in raw[len(MAGIC):]:
            return {}
        try:
            header = json.loads(raw[len(MAGIC):].split(b"\n", 1)[0])
        except ValueError:
            return {}
        return header if isinstance(header, dict) else {}

    def _backup(self, header: dict) -> Backup:
        fields = {k: header.get(k) for k in ("serial", "lineage", "written_at", "resources")}
        return Backup(id=header["id"], stack=header.get("stack", ""), tool=header.get("tool", "?"), taken_at=header.get("taken_at", "?"),
                      reason=header.get("reason", "?"), size=int(header.get("size") or 0), location=f"{self.where}{header['id']}.bak"
                      if self.where.endswith("/") else f"{self.where}/{header['id']}.bak", **fields)

    def list(self) -> list[Backup]:
        """Newest first (ids sort by time).  Objects that are not backups are left out."""
        out = []
        for name in sorted(self._objects.names(), reverse=True):
            header = self._header(name.removesuffix(".bak"))
            if header.get("id") == name.removesuffix(".bak"):
                out.append(self._backup(header))
        return out

    def find(self, backup_id: str | None) -> Backup:
        """The backup ``backup_id``; default the newest one a deploy kept (not the live state a restore replaced: that
        may be the damaged state).  ``InputError`` naming what there is when it does not exist."""
        backups = self.list()
        deploys = [b for b in backups if b.reason != "before-restore"]
        if not deploys and backup_id is None or not backups:
            raise InputError(f"{self.customer}/{self.environment} has no state backups in {self.where}",
                             hint="a backup is kept before and after every `engine up` of the stack")
        if backup_id is None:
            return deploys[0]
        if not set(backup_id) <= _ID_CHARS:
            raise InputError(f"{backup_id[:40]!r} is not a backup id", hint=f"`engine state backups {self.customer} --env {self.environment}` lists them")
        for backup in backups:
            if backup.id == backup_id:
                return backup
        raise InputError(f"{self.customer}/{self.environment} has no backup {backup_id!r}",
                         hint=f"its backups: {', '.join(b.id for b in backups[:5])}{' …' if len(backups) > 5 else ''}")

    def open(self, backup: Backup) -> bytes:
        """The backed-up state, decrypted.  ``OperationError`` when it cannot be opened (another passphrase, damage)."""
        raw = self._objects.get(f"{backup.id}.bak")
        if raw is None or not raw.startswith(MAGIC):
            raise OperationError(f"backup {backup.id} of {self.customer}/{self.environment} is missing or not a state backup")
        head, _, body = raw[len(MAGIC):].partition(b"\n")
        try:
            header = json.loads(head)
            salt = base64.b64decode(header["kdf"]["salt"])
            key = _subkey(_master_key(self._passphrase, self.customer), salt, b"state-backup v1")
            return AESGCM(key).decrypt(body[:12], body[12:], MAGIC + head)
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise OperationError(f"backup {backup.id} of {self.customer}/{self.environment} cannot be opened with the customer's "
                                 "passphrase (another passphrase, or the backup was altered)") from None
