"""`rzero operator` as a real process (the CLI, as the chart's Deployment runs it), for real-server tests.

    operator = OperatorProcess(kubeconfig, ["--namespace", ns], workdir).start()
    operator.kill()          # SIGKILL, as a node failure or OOM kill would
    operator.terminate()     # SIGTERM, as a rollout would

Logs (one JSON object a line) go to `workdir/operator-<n>.log`. The operator runs with its real defaults
(1 s requeue tick, 600 s safety-net resync): whatever a test sees happen within seconds was not the resync's doing.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_counter = itertools.count()


@dataclass
class OperatorProcess:
    kubeconfig: Path
    args: list[str]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log: Path | None = None

    def start(self) -> "OperatorProcess":
        self.log = self.workdir / f"operator-{next(_counter)}.log"
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        env.pop("KUBERNETES_SERVICE_HOST", None)  # never mistake the test machine for a pod
        command = [sys.executable, "-c", "from rzero_operator.cli import main; raise SystemExit(main())",
                   "operator", *self.args]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 30) -> int | None:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if not self.alive:
                raise AssertionError(f"operator exited {self.process.returncode} before logging {text!r}:\n"
                                     f"{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"operator did not log {text!r} in {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.1)
