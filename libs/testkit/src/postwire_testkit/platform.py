"""``postwire run ...`` as a child process, the way it is deployed."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from postwire_testkit.smtp import free_port


class PlatformProcess:
    """One postwire process (some or all services) with its own HTTP port and log file."""

    def __init__(
        self,
        services: list[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        ca_file: Path | None = None,
    ) -> None:
        self.services = services
        self.port = free_port()
        # HTTPS when the env names a certificate; ``ca_file`` is what verifies it.
        self.scheme = "https" if env.get("POSTWIRE_HTTP_TLS_CERT") else "http"
        self.ca_file = ca_file
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        )
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
        self.env = {
            **inherited,
            **env,
            "POSTWIRE_HTTP_HOST": "127.0.0.1",
            "POSTWIRE_HTTP_PORT": str(self.port),
            # Tracking links in delivered mail lead back to this process (unless a test
            # sets its own).
            "POSTWIRE_PUBLIC_URL": env.get(
                "POSTWIRE_PUBLIC_URL", f"{self.scheme}://127.0.0.1:{self.port}"
            ),
        }
        self.log_dir = log_dir
        self.log_path = log_dir / f"postwire-{'-'.join(services)}-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory (VmHWM) of the process and its workers, while alive."""
        if self._proc is None:
            return None
        peaks = [_peak_rss_kb(pid) for pid in _process_tree(self._proc.pid)]
        found = [p for p in peaks if p is not None]
        return sum(found) / 1024 if found else None

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) of the process and its workers now; 0 when not alive."""
        if self._proc is None:
            return 0.0
        found = [_status_kb(pid, "VmRSS:") for pid in _process_tree(self._proc.pid)]
        return sum(f for f in found if f is not None) / 1024

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PlatformProcess:
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "postwire", "run", *self.services],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_dir,  # no stray .env of the developer's checkout
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"postwire {self.services} exited:\n{self.log_tail()}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2, verify=self.verify)
                if ready.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"postwire {self.services} not ready:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (graceful shutdown)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a node dies."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _process_tree(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        try:
            for task in Path(f"/proc/{pids[index]}/task").iterdir():
                pids.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
        index += 1
    return pids


def _status_kb(pid: int, field: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return None


def _peak_rss_kb(pid: int) -> int | None:
    return _status_kb(pid, "VmHWM:")


class RssPeaks:
    """The highest resident memory of each process (by its services), and of all of them
    together, while a ``with`` block runs: sampled every ``every`` seconds in a thread.
    VmHWM keeps a process's peak over its whole life; this gives the peak of one phase."""

    def __init__(self, processes: list[PlatformProcess], every: float = 0.1) -> None:
        self.processes = processes
        self.every = every
        self.mb = {" ".join(p.services): 0.0 for p in processes}
        self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            now = {" ".join(p.services): p.rss_mb() for p in self.processes}
            for name, value in now.items():
                self.mb[name] = max(self.mb[name], value)
            self.total = max(self.total, sum(now.values()))
            self._stop.wait(self.every)

    def __enter__(self) -> RssPeaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
