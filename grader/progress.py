"""Shows a batch's progress on the terminal: a live bar, and one line per finished student."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from grader.score import StudentGrade


@dataclass
class Progress:
    """Live batch progress on a terminal; one line per finished student; silent when `quiet`."""

    total: int
    quiet: bool = False
    verbose: bool = False
    show_cached: bool = True  # a line for a student whose facts came from the cache too
    done: int = 0
    running: int = 0
    failures: int = 0
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.live = sys.stderr.isatty() and not self.quiet

    def start_one(self) -> None:
        self.running += 1
        self._draw()

    def finish_one(self, grade: StudentGrade, seconds: float, cached: bool) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        if grade.status != "graded" or grade.facts.execution.status != "completed":
            self.failures += 1
        if not self.quiet and (self.show_cached or not cached):
            self._clear()
            how = "cached" if cached else f"{seconds:.1f} s"
            timing = f"  [{how}]" if self.verbose else ""
            flag = "  INTEGRITY" if grade.integrity_flags else ""
            state = "" if grade.facts.execution.status == "completed" else f"  ({grade.facts.execution.status})"
            print(f"{grade.student:<32} {grade.total:6g} / {grade.max_total:g}{state}{flag}{timing}", file=sys.stderr)
        self._draw()

    def say(self, text: str) -> None:
        """A line about the batch as a whole, not one student (e.g. which notebooks run again, and why); the bar
        comes back with the next student who starts or finishes."""
        if not self.quiet:
            self._clear()
            print(text, file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", file=sys.stderr)

    def _draw(self) -> None:
        if not self.live:
            return
        width = 24
        filled = int(width * self.done / max(1, self.total))
        elapsed = time.monotonic() - self.started
        eta = (elapsed / self.done * (self.total - self.done)) if self.done else 0
        eta_text = f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s" if self.done else "ETA --"
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"\r\033[K[{bar}] {self.done}/{self.total} done, {self.running} running, "
            f"{self.failures} failed, {eta_text}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        self._clear()
