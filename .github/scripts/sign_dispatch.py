#!/usr/bin/env python3
"""Sign a dispatch for the engine by hand: prints the ``signature`` value (``t=<unix time>,v1=<hex>``).

For a manual run of infra-deploy (Actions → Run workflow, or ``gh workflow run``) and for
testing a customer's setup.  The secret is the customer's dispatch secret (its entry in the
manager secret ``ENGINE_DISPATCH_SECRETS``); it is read from the environment variable
``DISPATCH_SECRET`` or, when that is not set, asked for without echo — never from the command
line, where other users could see it in the process list.

    DISPATCH_SECRET=… python3 .github/scripts/sign_dispatch.py --customer acme --sha 0123…89 --mode plan [--pr 7] [--environment staging]

    gh workflow run infra-deploy.yml -f customer=acme -f sha="$SHA" -f mode=plan \\
      -f signature="$(python3 .github/scripts/sign_dispatch.py --customer acme --sha "$SHA" --mode plan)"

Sign exactly the values you send (empty ones included): the engine rebuilds the same text
from the event and compares.  ``--ref`` only for ``repository_dispatch`` (workflow_dispatch has
no ref).  Standard library only, so it runs anywhere Python 3 does.  The format is
``engine.events.dispatch_message``; tests keep the two, and the customer template, in step.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import os
import sys
import time


def signature(secret: str, *, customer: str, sha: str, ref: str, pr: str, mode: str, environment: str, timestamp: int) -> str:
    fields = {"t": str(timestamp), "customer": customer, "sha": sha, "ref": ref, "pr": pr, "mode": mode, "environment": environment}
    message = "infra-change.v1\n" + "".join(f"{name}={value}\n" for name, value in fields.items())
    return f"t={timestamp},v1={hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Print the signature of an infra-change dispatch.")
    parser.add_argument("--customer", required=True)
    parser.add_argument("--sha", default="", help="the 40-hex commit (empty: the default branch, workflow_dispatch only)")
    parser.add_argument("--ref", default="", help="repository_dispatch only, e.g. refs/heads/main")
    parser.add_argument("--pr", default="", help="pull request number")
    parser.add_argument("--mode", choices=["plan", "apply"], default="plan")
    parser.add_argument("--environment", default="")
    parser.add_argument("--timestamp", type=int, default=None, help=argparse.SUPPRESS)  # tests
    args = parser.parse_args(argv)
    secret = os.environ.get("DISPATCH_SECRET") or (getpass.getpass(f"dispatch secret of {args.customer}: ") if sys.stdin.isatty() else "")
    if not secret:
        print("sign_dispatch.py: set DISPATCH_SECRET (or run it in a terminal to be asked)", file=sys.stderr)
        return 2
    print(signature(secret, customer=args.customer, sha=args.sha, ref=args.ref, pr=args.pr, mode=args.mode,
                    environment=args.environment, timestamp=int(time.time()) if args.timestamp is None else args.timestamp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
