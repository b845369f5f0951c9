"""Daemons of the DNS lab: free loopback ports, processes started and stopped by their PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class LabError(RuntimeError):
    """The lab could not be brought up; the message carries the daemon's log tail."""


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_port(*hosts: str) -> int:
    """A port that is free for UDP and TCP on every host given (default 127.0.0.1).

    There is a small race between this check and the daemon binding the port; the daemons
    fail loudly when it is lost, and the ephemeral range makes a collision unlikely.
    """
    wanted = hosts or ("127.0.0.1",)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((wanted[0], 0))
            port = int(probe.getsockname()[1])
        if all(_bindable(host, port) for host in wanted):
            return port
    raise LabError(f"no port free for UDP and TCP on {', '.join(wanted)}")


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float = 10.0,
    alive: Callable[[], None] | None = None,
) -> float:
    """Poll `ready` until it is true; bounded by `timeout`. Returns the seconds it took."""
    start = time.monotonic()
    delay = 0.005
    while True:
        if alive is not None:
            alive()
        if ready():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise LabError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Daemon:
    """One server process in the foreground, its output in a log file, stopped by its PID."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest does not hit the daemon first
            )
        self.pid = self._process.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the log tail when the daemon has exited."""
        if self._process is None:
            raise LabError(f"{self.name} was never started")
        code = self._process.poll()
        if code is not None:
            raise LabError(f"{self.name} exited with status {code}:\n{self.log_tail()}")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to our PID only, then SIGKILL after `grace` seconds; idempotent."""
        process = self._process
        if process is None or self.pid is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                process.wait(timeout=grace)
        self._process = None


def run_tool(argv: Sequence[str], timeout: float = 10.0) -> str:
    """Run a control tool (knotc, unbound-control, keymgr) and return its stdout; bounded."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
