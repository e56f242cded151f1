"""API tokens for the portal's ``/api`` routes: scoped to one customer or the provider, stored hashed.

A token is 32 random bytes (``engp_`` + URL-safe text), shown once when it is created.  Only its SHA-256 is
kept, in the run history's database (``api_tokens``), so the tokens live wherever the history lives (SQLite
or PostgreSQL) and a copy of the database gives no usable token.  A fast hash is right here: the token is
random and long, there is nothing to guess that a slow hash would protect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from engine.catalog import check_customer_id
from engine.errors import InputError
from engine.history import HistoryStore, utc_iso

PREFIX = "engp_"
PROVIDER = "provider"
_TOKEN = re.compile(r"^engp_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    scope: str  # "provider" or "customer:<id>"
    created_at: str
    created_by: str
    revoked_at: str | None

    @property
    def customer(self) -> str | None:
        return self.scope.split(":", 1)[1] if self.scope.startswith("customer:") else None

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "scope": self.scope, "created_at": self.created_at, "created_by": self.created_by,
                "revoked_at": self.revoked_at}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scope_for(customer: str | None, provider: bool) -> str:
    if bool(customer) == bool(provider):
        raise InputError("a token is for one customer (--customer ID) or for the provider (--provider), not both or neither")
    return PROVIDER if provider else f"customer:{check_customer_id(customer)}"  # type: ignore[arg-type]


def create(store: HistoryStore, name: str, scope: str, created_by: str) -> tuple[str, TokenRecord]:
    """A new token (its only appearance in clear) and its record."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", name):
        raise InputError(f"token name {name[:70]!r} must be 1-64 letters, digits, spaces, '.', '_' or '-'")
    token = PREFIX + secrets.token_urlsafe(32)
    now = utc_iso(dt.datetime.now(dt.timezone.utc))
    store.execute("INSERT INTO api_tokens (token_hash, name, scope, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                  (digest(token), name, scope, now, created_by))
    (record,) = [r for r in list_tokens(store) if r.created_at == now and r.name == name][-1:]
    return token, record


def list_tokens(store: HistoryStore) -> list[TokenRecord]:
    rows = store.select("SELECT id, name, scope, created_at, created_by, revoked_at FROM api_tokens ORDER BY id")
    return [TokenRecord(**r) for r in rows]


def revoke(store: HistoryStore, token_id: int) -> TokenRecord:
    now = utc_iso(dt.datetime.now(dt.timezone.utc))
    if not store.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, int(token_id))):
        raise InputError(f"no active token with id {token_id}", hint="engine token list shows them")
    return next(r for r in list_tokens(store) if r.id == token_id)


def verify(store: HistoryStore, token: str) -> TokenRecord | None:
    """The active token's record, or None (malformed, unknown or revoked)."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    rows = store.select("SELECT id, name, scope, created_at, created_by, revoked_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                        (digest(token),))
    return TokenRecord(**rows[0]) if rows else None
