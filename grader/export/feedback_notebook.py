"""Feedback notebooks: the student's notebook with the grader's feedback after each section's code."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat

from grader.execution.notebook import MAX_JSON_VALUES, values_at_most
from grader.export.summary import check_message, summary_text
from grader.files import read_regular_file
from grader.rubric.model import Rubric
from grader.score import SectionResult, StudentGrade, number, rubric_sections

_MARKDOWN_SPECIAL = re.compile(r"[&<>\\`*_\[\]#|~$]")


def mentions(source: str, keywords: Iterable[str]) -> bool:
    """Whether a code cell's source mentions one of `keywords`, the names that mark a rubric section's code.

    Shared with the report, which places a cell that raised beside the checks it explains.
    """
    return any(re.search(rf"\b{re.escape(word)}\b", source) for word in keywords)


def markdown_text(text: str) -> str:
    """Text shown literally in a Markdown cell: no HTML, no formatting, no math, one line.

    Characters are written as numeric entities rather than backslash escapes, because `\\(` and `\\[`
    open math in Jupyter's Markdown.
    """
    return _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", " ".join(text.split()))


def _feedback_markdown(section: SectionResult) -> str:
    lines = [
        f"### Grader feedback: {markdown_text(section.title)} ({number(section.points)} / {number(section.max)})",
        "",
    ]
    lines += [f"**Integrity:** {markdown_text(e)}" for e in section.integrity]
    for check in sorted(section.checks, key=lambda c: c.passed):
        mark = "✓" if check.passed else "✗"
        lines.append(
            f"- {mark} **{markdown_text(check.title)}** ({number(check.points)} / {number(check.max)}): "
            + markdown_text(check_message(check))
        )
    return "\n".join(lines)


def _feedback_cell(source: str, minor: int) -> Any:
    cell = nbformat.v4.new_markdown_cell(source, metadata={"tags": ["grader-feedback"]})
    if minor < 5:  # cell ids arrived in nbformat 4.5; an older notebook must not gain one
        cell.pop("id", None)
    return cell


def write_feedback_notebook(grade: StudentGrade, source_nb: Path, dest: Path, rubric: Rubric) -> None:
    """Writes the student's notebook with the grader's feedback after each section's code.

    A summary cell goes first; each rubric section's cell follows the last code cell that mentions one of
    that section's `keywords`, or goes at the end of the notebook (no keywords, or no cell mentions them).
    A notebook that cannot be read gets no feedback copy: its report already explains why. Neither does one too
    costly to parse whole (more than MAX_JSON_VALUES values: millions of empty lists in its metadata).
    """
    try:
        raw = read_regular_file(source_nb, rubric.limits.notebook_bytes)
        # nbformat builds the whole file, saved outputs included: only where that costs a bounded amount.
        if values_at_most(raw) > MAX_JSON_VALUES:
            return
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception:  # unreadable or invalid JSON: nbformat raises many types; nothing to annotate
        return
    minor = int(nb.get("nbformat_minor", 0))
    cells = list(nb.cells)
    after: dict[int, list[str]] = {}
    for spec, section in zip(rubric.sections, rubric_sections(grade, rubric), strict=True):
        places = [
            i
            for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and mentions(str(c.get("source", "")), spec.keywords)
        ]
        after.setdefault(places[-1] if places else len(cells) - 1, []).append(_feedback_markdown(section))
    summary = "## Grader feedback\n\n" + "  \n".join(
        markdown_text(line.strip()) for line in summary_text(grade, rubric).splitlines()
    )
    result = [_feedback_cell(summary, minor)]
    if not cells:
        result += [_feedback_cell(t, minor) for texts in after.values() for t in texts]
    for i, cell in enumerate(cells):
        result.append(cell)
        result += [_feedback_cell(t, minor) for t in after.get(i, [])]
    nb.cells = result
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
