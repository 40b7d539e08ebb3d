"""A throwaway server run as our child process: what slapd and the Samba DC share.

The child and its directory are cleaned up even if the owner is forgotten (the owner registers
``ChildProcess.cleanup`` with ``weakref.finalize``); servers are stopped by PID.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self


class ChildProcess:
    """The server's process and its directory."""

    def __init__(self, directory: Path, *, keep: bool, stop_timeout: float = 10.0) -> None:
        self.directory = directory
        self.keep = keep
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)


class ThrowawayServer:
    """``running``, ``pid`` and ``with`` for a server held in ``self._process``."""

    _process: ChildProcess
    #: where the child's output goes
    log_file: Path

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        proc = self._process.proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._process.proc
        return proc.pid if proc is not None else None

    def _log_tail(self, limit: int = 4000) -> str:
        """The end of the child's output, for error messages."""
        try:
            return self.log_file.read_text(errors="replace").strip()[-limit:] or "(no output)"
        except OSError:
            return "(no output)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
