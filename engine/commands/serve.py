"""``engine serve``: the portal (engine/portal); ``engine token create|list|revoke``: its API tokens."""

from __future__ import annotations

import os

import click

from engine import history as hist
from engine.commands import Outcome
from engine.commands.options import JSON, Verb, arg, opt
from engine.errors import InputError
from engine.provenance import actor
from engine.wiring import Wiring


def serve(w: Wiring, host: str, port: int, local_sign_in: bool) -> Outcome:
    from engine.portal import PortalSettings, create_app

    settings = PortalSettings.from_env(host=host, port=port, local_sign_in=local_sign_in)  # refused settings: exit 2, nothing served
    store = hist.HistoryStore.from_url(os.environ.get("ENGINE_HISTORY_URL"), w.home.root)
    if not (w.catalog_root / "stacks").is_dir():
        raise InputError(f"no tenant catalog at {w.catalog_root / 'stacks'}", hint="run from the provider repository or pass --catalog PATH")
    app = create_app(settings, store, w.catalog_root.resolve(), w.home.root)
    import uvicorn

    mode = "local sign-in (this machine only)" if local_sign_in else "GitHub sign-in"
    click.echo(f"portal: http://{host}:{port}/ ({mode}); history in {store.where}; Ctrl-C stops it", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
    return Outcome({"stopped": True}, "portal stopped")


def _store(w: Wiring) -> hist.HistoryStore:
    return hist.HistoryStore.from_url(os.environ.get("ENGINE_HISTORY_URL"), w.home.root)


def token_create(w: Wiring, name: str, customer: str | None, provider: bool) -> Outcome:
    from engine.portal import tokens

    scope = tokens.scope_for(customer, provider)
    if customer is not None:
        w.engine().catalog.record(customer)  # an unknown customer: exit 2
    token, record = tokens.create(_store(w), name, scope, actor())
    text = (f"token {record.id} ({record.name}, {record.scope}) created. It is shown once; keep it secret:\n{token}\n"
            f"use it as: Authorization: Bearer <token>")
    return Outcome({**record.to_dict(), "token": token}, text)


def token_list(w: Wiring) -> Outcome:
    from engine.portal import tokens

    records = tokens.list_tokens(_store(w))
    lines = [f"{'ID':>4}  {'NAME':<24} {'SCOPE':<28} {'CREATED (UTC)':<20} {'BY':<16} REVOKED"]
    lines += [f"{r.id:>4}  {r.name:<24} {r.scope:<28} {r.created_at[:19].replace('T', ' '):<20} {r.created_by:<16} {r.revoked_at or '-'}"
              for r in records]
    return Outcome({"tokens": [r.to_dict() for r in records]}, "\n".join(lines) if records else "no tokens")


def token_revoke(w: Wiring, token_id: int) -> Outcome:
    from engine.portal import tokens

    record = tokens.revoke(_store(w), token_id)
    return Outcome(record.to_dict(), f"token {record.id} ({record.name}) revoked")


VERBS = (
    Verb("serve", serve, (opt("--host", default="127.0.0.1", show_default=True, help="Address to listen on."),
                          opt("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on."),
                          opt("--local-sign-in", is_flag=True, help="Sign in by choosing who you are: only on a loopback --host "
                                                                    "(tests, the demo); refused otherwise.")),
         "The portal: the fleet, each customer's stacks, usage and the SLA report, with a JSON API (docs/PORTAL.md)."),
    Verb("create", token_create, (JSON, opt("--name", required=True, help="What the token is for (shown in lists)."),
                                  opt("--customer", metavar="ID", help="Scope: this customer only."),
                                  opt("--provider", is_flag=True, help="Scope: everything (the provider).")),
         "Create an API token for the portal's /api routes; shown once, stored hashed.", group="token"),
    Verb("list", token_list, (JSON,), "The portal's API tokens (never their values).", group="token"),
    Verb("revoke", token_revoke, (arg("token_id", type=int), JSON),
         "Revoke an API token at once.", group="token"),
)
