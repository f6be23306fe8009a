"""What the facts keep of a run's cells and outputs, bounded so that a run's facts always fit the facts cache.

Only outputs the grader's own run produced are here: the notebook is read without its saved outputs
(`grader.execution.notebook`). Each part has its own bound (a cell's source, the sources together, a cell's
printed text, the images together); `fitted` then measures the facts as they are stored and, should a
notebook still exceed what the cache reads back, drops the least needed parts until they fit.
"""

from __future__ import annotations

import base64
from typing import Any

from msgspec.structs import replace

from grader.facts import MAX_FACTS_JSON_BYTES, CellFacts, ExecutionFacts, Facts, KernelFacts, facts_to_json
from grader.statuses import CellStatus
from grader.terminal_text import strip_ansi

MAX_SOURCE = 20_000  # characters of one cell's source
MAX_SOURCES = 400_000  # characters of all the sources together: about 20 times an honest notebook's
_MAX_STDOUT = 64 << 10
_MAX_CELL_STDOUT = 8 << 10
_MAX_IMAGE = 2 << 20
_MAX_IMAGES = 8 << 20  # base64 characters of all the kept images together
_CUT = "\n[grader: the rest of this cell's source is not kept]"


def cell_facts(cells: list[Any], states: list[CellStatus]) -> list[CellFacts]:
    """Each code cell's facts, in order (`states` is how each ran), with the sources within `MAX_SOURCES`."""
    budget = MAX_SOURCES
    facts = []
    for number, (cell, state) in enumerate(zip(cells, states, strict=True), start=1):
        keep = min(MAX_SOURCE, budget)
        source = cell.source if len(cell.source) <= keep else cell.source[:keep] + _CUT
        budget -= min(len(cell.source), keep)
        facts.append(_cell_facts(cell, number, state, source))
    return facts


def _cell_facts(cell: Any, number: int, state: CellStatus, source: str) -> CellFacts:
    error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    if error is None:
        return CellFacts(index=number, status=state, source=source)
    traceback = [strip_ansi(line) for line in error.get("traceback", [])]
    lines = [ln for block in traceback for ln in block.splitlines() if ln.strip()]
    return CellFacts(
        index=number,
        status="timeout" if state == "timeout" else "error" if state == "ok" else state,
        source=source,
        error_name=str(error.get("ename", ""))[:200],
        error_value=strip_ansi(str(error.get("evalue", "")))[:1000],
        traceback_tail=[ln[:500] for ln in lines[-8:]],
    )


def stdout(cells: list[Any]) -> str:
    """What the cells printed, bounded: each cell keeps its first and last lines, where the shapes, labels
    and scores the checks look for are printed, and drops the middle of a long output."""
    parts = []
    for cell in cells:
        text = strip_ansi(
            "".join(
                out.get("text", "")
                for out in cell.get("outputs", [])
                if out.get("output_type") == "stream" and out.get("name") == "stdout"
            )
        )
        if len(text) > _MAX_CELL_STDOUT:
            half = _MAX_CELL_STDOUT // 2
            text = text[:half] + "\n[...]\n" + text[-half:]
        parts.append(text)
    return "".join(parts)[-_MAX_STDOUT:]


def images(cells: list[Any]) -> dict[str, str]:
    """The last PNG each cell showed, by code cell number, while they fit `_MAX_IMAGES` together."""
    found: dict[str, str] = {}
    for number, cell in enumerate(cells, start=1):
        for out in cell.get("outputs", []):
            png = (
                out.get("data", {}).get("image/png")
                if out.get("output_type") in ("display_data", "execute_result")
                else None
            )
            if isinstance(png, str) and len(png) < _MAX_IMAGE:
                try:
                    base64.b64decode(png, validate=False)
                except ValueError:
                    continue
                found[str(number)] = png.replace("\n", "")
    kept: dict[str, str] = {}
    room = _MAX_IMAGES
    for key, png in found.items():
        if len(png) <= room:
            kept[key] = png
            room -= len(png)
    return kept


def fitted(facts: Facts, max_bytes: int = MAX_FACTS_JSON_BYTES) -> Facts:
    """`facts`, or as much of them as fits in `max_bytes` of stored JSON: the images go first, then the
    sources and error texts, then the kernel's facts; what was dropped is said in `limits_hit`."""
    if len(facts_to_json(facts)) <= max_bytes:
        return facts
    execution = facts.execution
    for dropped, smaller in (
        ("the images", lambda e: replace(e, images={})),
        ("the cells' sources and errors", lambda e: replace(e, cells=[_bare(c) for c in e.cells], stdout="")),
    ):
        execution = _noted(smaller(execution), dropped)
        facts = replace(facts, execution=execution)
        if len(facts_to_json(facts)) <= max_bytes:
            return facts
    execution = _noted(execution, "what the kernel recorded")
    return replace(facts, execution=execution, kernel=KernelFacts.empty(facts.kernel.request))


def _bare(cell: CellFacts) -> CellFacts:
    return CellFacts(index=cell.index, status=cell.status, source="", error_name=cell.error_name[:200])


def _noted(execution: ExecutionFacts, dropped: str) -> ExecutionFacts:
    note = f"{dropped} not kept: the run's facts were over what the facts cache holds"
    return replace(execution, limits_hit=[*execution.limits_hit, note])
