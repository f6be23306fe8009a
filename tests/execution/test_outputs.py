"""What the facts keep of a run's cells: bounded parts, and facts that always fit what the facts cache reads back."""

from __future__ import annotations

import nbformat
from msgspec.structs import replace

from grader.execution.outputs import MAX_SOURCE, MAX_SOURCES, cell_facts, fitted, images
from grader.facts import CellFacts, facts_from_json, facts_to_json
from tests.factories import make_facts

# 700 cells of long comments in a character JSON writes as \\uXXXX: the 28 MB notebook whose facts were 84 MB.
LONG_COMMENTS = ["# " + "é" * 20_000 for _ in range(700)]


def test_the_sources_together_stay_within_their_budget() -> None:
    cells = [nbformat.v4.new_code_cell(source) for source in LONG_COMMENTS]
    kept = cell_facts(cells, ["ok"] * len(cells))
    assert len(kept) == 700
    assert all(len(c.source) <= MAX_SOURCE + 60 for c in kept)
    assert sum(len(c.source) for c in kept) <= MAX_SOURCES + 60 * len(kept)
    assert kept[0].source.startswith("# éé") and "not kept" in kept[0].source
    assert kept[-1].source.endswith("[grader: the rest of this cell's source is not kept]")


def test_an_honest_cells_source_is_kept_whole() -> None:
    (kept,) = cell_facts([nbformat.v4.new_code_cell("model.fit(x, y)")], ["ok"])
    assert kept.source == "model.fit(x, y)"


def test_the_images_together_stay_within_their_budget() -> None:
    png = "iVBORw0KGgoA" + "A" * (1 << 20)  # valid base64: a length divisible by 4
    cells = []
    for _ in range(20):
        cell = nbformat.v4.new_code_cell("plot")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
        cells.append(cell)
    kept = images(cells)
    assert 0 < len(kept) < 20
    assert sum(map(len, kept.values())) <= 8 << 20


def test_facts_that_fit_are_unchanged() -> None:
    facts = make_facts()
    assert fitted(facts) is facts


def test_facts_over_the_bound_shed_images_then_sources_then_kernel_facts() -> None:
    cells = [CellFacts(index=n, status="ok", source="\U0001f600" * 5000) for n in range(1, 41)]
    facts = make_facts()
    big = replace(facts, execution=replace(facts.execution, cells=cells, images={"1": "A" * 300_000}))
    bound = len(facts_to_json(big)) // 2
    small = fitted(big, bound)
    text = facts_to_json(small)
    assert len(text) <= bound
    assert facts_from_json(text) == small
    assert small.execution.images == {} and all(c.source == "" for c in small.execution.cells)
    assert small.kernel == facts.kernel  # shed only as far as needed
    assert [note.split(" not kept")[0] for note in small.execution.limits_hit[-2:]] == [
        "the images",
        "the cells' sources and errors",
    ]


def test_as_a_last_resort_the_kernel_facts_go() -> None:
    facts = make_facts()
    small = fitted(facts, len(facts_to_json(facts)) // 3)
    assert small.kernel.model.present is False
    assert small.execution.limits_hit[-1].startswith("what the kernel recorded not kept")
