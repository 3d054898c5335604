"""`rzero operator` as real processes (the real CLI, signals, exit codes), for leader-election tests.

    proc = OperatorProcess.start(kubeconfig, "op-a", log_dir, "-A", "--leader-elect", ...)
    proc.signal(signal.SIGTERM); proc.wait(10) -> exit code; proc.log() -> its JSON log lines

Each process gets POD_NAME=<identity> (its Lease identity, as the chart's pods do) and this checkout's source
roots on PYTHONPATH, so it runs the code under test, not whatever `rzero` is installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import rzero_operator
import rzero_worker

SOURCE_ROOTS = [str(Path(rzero_operator.__file__).resolve().parents[1]), str(Path(rzero_worker.__file__).resolve().parents[1])]


@dataclass
class OperatorProcess:
    identity: str
    popen: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, kubeconfig: Path, identity: str, log_dir: Path, *args: str,
              env: dict[str, str] | None = None) -> "OperatorProcess":
        path = log_dir / f"operator-{identity}.log"
        environment = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAME": identity,
                       "PYTHONPATH": os.pathsep.join(SOURCE_ROOTS + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                       "RZERO_OPERATOR_TICK_SECONDS": "0.1", **(env or {})}
        environment.pop("KUBERNETES_SERVICE_HOST", None)  # never the in-cluster config of a CI pod
        with path.open("wb") as log:
            popen = subprocess.Popen([sys.executable, "-m", "rzero_operator.cli", "operator", *args],
                                     stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        return cls(identity, popen, path)

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def messages(self) -> list[str]:
        """The `message` of every JSON log line."""
        found = []
        for line in self.log().splitlines():
            try:
                found.append(json.loads(line)["message"])
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def kill(self) -> None:
        """Teardown: SIGCONT (it may be stopped) and SIGKILL, then reap."""
        if self.alive:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    self.popen.send_signal(sig)
                except ProcessLookupError:
                    break
        self.popen.wait(10)
