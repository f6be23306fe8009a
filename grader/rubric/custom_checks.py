"""An instructor's own check kinds, from the Python file the rubric names under `custom_checks`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from grader.errors import GraderError
from grader.rubric.source import Source


def load_custom_checks(path: Path, source: Source) -> None:
    """Runs the instructor's check file (in the grader, never in a student's kernel); its `@check_kind`
    decorators add kinds the rubric can name."""
    if not path.is_file():
        raise source.error(("custom_checks",), f"file not found: {path}")
    module_name = f"grader_custom_checks_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise source.error(("custom_checks",), f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GraderError:
        raise
    except Exception as exc:
        raise source.error(("custom_checks",), f"{path.name} failed to load: {type(exc).__name__}: {exc}") from None
