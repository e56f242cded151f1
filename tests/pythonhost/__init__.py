"""A stand-in for Pulumi's Python language host, for running Python Pulumi projects with the real ``pulumi`` CLI.

``pulumi preview`` in a project with ``runtime: python`` starts the plugin ``pulumi-language-python``
(a Go program in Pulumi's release archives).  The engine builds Pulumi from the Go module proxy, which
does not serve that plugin's module, and its own runners never need it (their programs run inline).
Spacelift's Pulumi runner images do have it.  Tests that check what Spacelift runs — ``pulumi preview``
in a project directory of the manager repository — put this stand-in on ``PATH`` instead.

What it stands in for is small: a gRPC ``LanguageRuntime`` server that answers the CLI and, for
``Run``, starts ``pulumi-language-python-exec`` (the script from the Pulumi SDK module that the
engine installs next to ``pulumi``, and that the real host starts too) with the same arguments,
working directory and environment (``PULUMI_CONFIG``) the real host gives it.  The program itself,
the resource monitor, the providers and the CLI are the real ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

HOST = Path(__file__).resolve().parent / "host.py"


def install(directory: Path) -> Path:
    """Write the ``pulumi-language-python`` launcher into ``directory`` (put it on ``PATH``); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / "pulumi-language-python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HOST}" "$@"\n')
    launcher.chmod(0o755)
    return launcher
