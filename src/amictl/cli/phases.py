"""Seconds per phase of a command, wall and CPU, for ``-v`` (issue 30: the bench's breakdown).

CPU (all threads of the process) says what the command itself spent when the machine is
shared; wall says what its user waited.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Phases:
    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._open: dict[str, tuple[float, float]] = {}

    def start(self, name: str) -> None:
        self._open[name] = (time.perf_counter(), time.process_time())

    def stop(self, name: str) -> None:
        t0, c0 = self._open.pop(name)
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t0
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c0

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.start(name)
        try:
            yield
        finally:
            self.stop(name)

    def line(self) -> str:
        """``phase seconds (wall/cpu): scan=1.234/0.567 decide=...``"""
        parts = [f"{k}={v:.3f}/{self.cpu.get(k, 0.0):.3f}" for k, v in self.wall.items()]
        return "phase seconds (wall/cpu): " + " ".join(parts)
