"""Which rubric `grade` uses: the one named, else `./rubric.yaml`, else the MNIST homework shipped with the grader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Package data, so that an installed grader can grade the MNIST homework from any folder. The project's
# top-level rubric.yaml and reference/ are links to it.
BUNDLED_RUBRIC = Path(__file__).parent / "homework" / "mnist" / "rubric.yaml"


@dataclass(frozen=True, slots=True)
class RubricChoice:
    path: Path
    source: str  # why this one: where it came from, in the user's words

    def describe(self) -> str:
        return f"rubric: {self.path.absolute()} ({self.source})"


def choose_rubric(given: Path | None) -> RubricChoice:
    """`--rubric` when given; else `rubric.yaml` in the current folder when there is one; else the bundled one."""
    if given is not None:
        return RubricChoice(given, "--rubric")
    local = Path("rubric.yaml")
    if local.is_symlink() or local.exists():  # a broken link is still the user's: its error says so
        return RubricChoice(local, "./rubric.yaml")
    return RubricChoice(BUNDLED_RUBRIC, "bundled MNIST homework")
