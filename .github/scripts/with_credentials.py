#!/usr/bin/env python3
"""Run a command (the engine) with the provider's credentials prepared from the job's environment.

Usage (from a workflow step whose ``env:`` carries the secrets):

    python3 .github/scripts/with_credentials.py [--output FILE] COMMAND [ARG...]
    python3 .github/scripts/with_credentials.py .venv/bin/engine event "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH" --mode plan

``--output FILE`` sends the command's stdout to FILE (e.g. ``--json`` results).  Use it
instead of a shell redirect: this script prints ``::add-mask::`` commands, which must
reach the runner's log and never a file.

1. Customer passphrases.  GitHub-hosted runners are fresh machines, so the engine cannot
   keep generated passphrases in ``$ENGINE_HOME/secrets``.  ``ENGINE_PASSPHRASES`` is one
   secret holding a JSON object ``{"<customer>": "<passphrase>", …}``; each value is
   masked in the log and exported as ``ENGINE_PASSPHRASE_<CUSTOMER>`` (upper case, '-' as
   '_'), the variable the engine reads.  ``ENGINE_PASSPHRASES`` itself is removed.
2. Dispatch secrets.  ``ENGINE_DISPATCH_SECRETS`` (JSON ``{"<customer>": "<dispatch secret>", …}``)
   stays in the environment for the engine, which verifies each dispatch with the entry of
   the customer it names; every value is masked in the log here (GitHub masks a secret's
   whole text, not the values inside a JSON secret).
3. AWS through OIDC (recommended).  When ``AWS_ROLE_ARN`` is set, a GitHub OIDC token
   (audience ``sts.amazonaws.com``) is written to a private file and
   ``AWS_WEB_IDENTITY_TOKEN_FILE`` points at it: the AWS SDKs used by pulumi, OpenTofu's
   S3 backend and boto3 assume the role themselves.  Needs ``permissions: id-token: write``.
4. Azure through OIDC.  When ``ARM_CLIENT_ID`` is set without a client secret or certificate,
   ``ARM_USE_OIDC=true`` and the runner's OIDC token endpoint (``ARM_OIDC_REQUEST_URL``,
   ``ARM_OIDC_REQUEST_TOKEN``) are exported: Pulumi's azure-native and OpenTofu's azurerm then
   request a fresh GitHub OIDC token whenever they need one (the azure/login step before signs in
   only the Azure CLI).  Needs ``permissions: id-token: write``.  GCP needs nothing here: the
   google-github-actions/auth step exports a credentials file that does the same.
5. Empty values are removed: an unset secret or variable arrives as ``""``, which some
   SDKs treat differently from "not set".

Then the command runs as a child (its exit code is the step's).  With OIDC, the token file
is refreshed every 4 minutes while it runs: GitHub's OIDC tokens expire after about 5 minutes,
and every pulumi/tofu/provider process re-reads the file when it assumes the role.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request

CUSTOMER_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
OPTIONAL = ("ENGINE_GITHUB_TOKEN", "ENGINE_GITHUB_APP_ID", "ENGINE_GITHUB_APP_PRIVATE_KEY", "ENGINE_PASSPHRASES", "ENGINE_DISPATCH_SECRETS",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_REGION", "AWS_DEFAULT_REGION",
            "ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID")


def fail(message: str) -> None:
    print(f"::error title=Engine credentials::{message}", flush=True)
    sys.exit(2)


def passphrases(env: dict[str, str]) -> None:
    raw = env.pop("ENGINE_PASSPHRASES", "")
    if not raw:
        return
    try:
        table = json.loads(raw)
    except ValueError:
        fail("ENGINE_PASSPHRASES is not valid JSON (expected {\"customer-id\": \"passphrase\", ...})")  # never echo the value
    if not isinstance(table, dict):
        fail("ENGINE_PASSPHRASES must be a JSON object {\"customer-id\": \"passphrase\", ...}")
    for customer, value in table.items():
        if not isinstance(customer, str) or not CUSTOMER_ID.match(customer) or not isinstance(value, str) or not value:
            fail("ENGINE_PASSPHRASES has an entry that is not \"customer-id\": \"non-empty passphrase\"")
        print(f"::add-mask::{value}", flush=True)
        env["ENGINE_PASSPHRASE_" + customer.upper().replace("-", "_")] = value


def mask_dispatch_secrets(env: dict[str, str]) -> None:
    """Mask each value of ENGINE_DISPATCH_SECRETS; a malformed table is the engine's to report (it refuses dispatches)."""
    try:
        table = json.loads(env.get("ENGINE_DISPATCH_SECRETS", "") or "{}")
    except ValueError:
        return
    for value in table.values() if isinstance(table, dict) else ():
        if isinstance(value, str) and value:
            print(f"::add-mask::{value}", flush=True)


def _oidc_token(env: dict[str, str]) -> str:
    url, token = env.get("ACTIONS_ID_TOKEN_REQUEST_URL"), env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not token:
        fail("AWS_ROLE_ARN is set but the job cannot request an OIDC token: add `permissions: id-token: write` to the job")
    request = urllib.request.Request(url + "&audience=sts.amazonaws.com", headers={"Authorization": f"bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - the runner's own token service
            jwt = json.load(resp)["value"]
    except Exception as exc:  # noqa: BLE001
        fail(f"could not get a GitHub OIDC token for AWS: {type(exc).__name__}")
    print(f"::add-mask::{jwt}", flush=True)
    return jwt


def _write_private(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))  # mode 600
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)  # atomic: a reader never sees half a token


def aws_oidc(env: dict[str, str]) -> bool:
    """Set up the web-identity token file; True when it must be kept fresh."""
    if not env.get("AWS_ROLE_ARN") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return False
    directory = tempfile.mkdtemp(prefix="aws-web-identity-", dir=env.get("RUNNER_TEMP") or None)
    path = os.path.join(directory, "token")
    _write_private(path, _oidc_token(env))
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = path
    env.setdefault("AWS_ROLE_SESSION_NAME", f"managed-infra-engine-{env.get('GITHUB_RUN_ID', 'local')}")
    return True


def azure_oidc(env: dict[str, str]) -> None:
    """Let the Azure providers authenticate with the job's OIDC token (they request fresh ones themselves)."""
    if not env.get("ARM_CLIENT_ID") or env.get("ARM_CLIENT_SECRET") or env.get("ARM_CLIENT_CERTIFICATE_PATH") or env.get("ARM_USE_OIDC") == "false":
        return
    url, token = env.get("ACTIONS_ID_TOKEN_REQUEST_URL"), env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not token:
        fail("ARM_CLIENT_ID is set but the job cannot request an OIDC token: add `permissions: id-token: write` to the job")
    print(f"::add-mask::{token}", flush=True)
    env.update({"ARM_USE_OIDC": "true", "ARM_OIDC_REQUEST_URL": url, "ARM_OIDC_REQUEST_TOKEN": token})


def _refresh_forever(env: dict[str, str], stop: "threading.Event") -> None:
    while not stop.wait(240):
        try:
            _write_private(env["AWS_WEB_IDENTITY_TOKEN_FILE"], _oidc_token(env))
        except SystemExit:
            print("::warning title=Engine credentials::could not refresh the OIDC token; the next AWS call may fail", flush=True)


def main(argv: list[str]) -> None:
    output = None
    if argv[:1] == ["--output"] and len(argv) >= 2:
        output, argv = argv[1], argv[2:]
    if not argv:
        fail("usage: with_credentials.py [--output FILE] COMMAND [ARG...]")
    env = dict(os.environ)
    for name in OPTIONAL:
        if env.get(name) == "":
            del env[name]
    passphrases(env)
    mask_dispatch_secrets(env)
    refresh = aws_oidc(env)
    azure_oidc(env)
    sys.stdout.flush()
    stdout = open(output, "w", opener=lambda p, f: os.open(p, f, 0o600)) if output else None
    stop = threading.Event()
    if refresh:
        threading.Thread(target=_refresh_forever, args=(env, stop), daemon=True).start()
    child = subprocess.Popen(argv, env=env, stdout=stdout)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the runner cancels a job with SIGINT/SIGTERM: pass it on
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    stop.set()
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
