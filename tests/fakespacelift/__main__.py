"""Run the local Spacelift server by hand (docs/SPACELIFT.md): prints the environment a client needs, then serves.

    python -m tests.fakespacelift > spacelift.env &   # export lines for SPACELIFT_API_KEY_ENDPOINT/ID/SECRET

Runs advance one state each time they are read.  Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading

from .server import FakeSpacelift


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeSpacelift() as server:
        for key, value in server.env().items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        stop.wait()


if __name__ == "__main__":
    main()
