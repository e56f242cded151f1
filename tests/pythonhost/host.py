"""The stand-in language host's server (see ``__init__.py``).  Started by the pulumi CLI as a plugin:
it prints the port it listens on, then serves until the CLI closes it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent import futures

import grpc
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

# pulumi-language-python-exec exits with this after printing a message meant for the user
USER_ACTIONABLE_EXIT = 32


def _exec_script() -> str:
    """``pulumi-language-python-exec`` next to the ``pulumi`` binary that started us."""
    found = shutil.which("pulumi-language-python-exec")
    if not found:
        raise RuntimeError("pulumi-language-python-exec is not on PATH (it is installed next to pulumi)")
    return found


class Host(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str):
        self.engine_address = engine_address

    def Handshake(self, request, context):
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version="3.0.0")

    def About(self, request, context):
        return language_pb2.AboutResponse(executable=sys.executable, version=sys.version.split()[0])

    def GetRequiredPlugins(self, request, context):
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request, context):
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(self, request, context):
        return iter(())

    def Run(self, request, context):
        info = request.info
        # the real host's choice of interpreter, without a virtualenv: PULUMI_PYTHON_CMD, else python3
        python = os.environ.get("PULUMI_PYTHON_CMD") or shutil.which("python3") or sys.executable
        args = [python, "-u", _exec_script()]
        for key, value in (("monitor", request.monitor_address), ("engine", self.engine_address), ("project", request.project),
                           ("root_directory", info.root_directory), ("stack", request.stack), ("pwd", request.pwd),
                           ("dry_run", "true" if request.dryRun else "false"), ("parallel", str(request.parallel)),
                           ("organization", request.organization)):
            if value:
                args += [f"--{key}", value]
        args.append(info.entry_point or ".")
        args += list(request.args)
        env = {**os.environ, "PULUMI_CONFIG": json.dumps(dict(request.config)),
               "PULUMI_CONFIG_SECRET_KEYS": json.dumps(list(request.configSecretKeys))}
        done = subprocess.run(args, cwd=info.program_directory or request.pwd or None, env=env, check=False)
        if done.returncode == USER_ACTIONABLE_EXIT:
            return language_pb2.RunResponse(bail=True)
        if done.returncode != 0:
            return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {done.returncode}")
        return language_pb2.RunResponse()


def main(argv: list[str]) -> None:
    positional = [a for a in argv if not a.startswith("-")]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(Host(positional[0] if positional else ""), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # the CLI interrupts its plugins when it is done with them: that is the end, not an error
    signal.signal(signal.SIGINT, lambda *_: server.stop(grace=1))
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv[1:])
