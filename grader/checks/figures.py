"""Checks of the figures the notebook showed: the indices it picked, the grid, the images in its panels and
their titles.

A panel is a training image when its pixels are one: the probe matches each panel against the provisioned
training images, whatever variable picked it. When `figures.training_images` names the notebook's index
variable and that variable holds indices, a panel counts only if it shows one of them (the figure must show
what the notebook picked); when the variable is missing, the pixels alone decide, and the missing variable
costs `figures.indices` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field

from grader.assignment import Assignment, Identifier
from grader.checks.base import Context, Params, Problem, Verdict, check_kind, fail, failure, missing, ok
from grader.facts import Facts, FigureFacts, PanelFacts, VariableFacts

# Code words of the cells that draw a figure of images.
_DRAWING = ("imshow", "subplot")
# A whole number standing alone in a title: "9" in "Class 9", not the digits of "0.5" or "int64".
_INTEGER = re.compile(r"(?<![\w.])\d+(?![\w.])")


def shown_figure(facts: Facts, count: int | None = None, grid: tuple[int, int] | None = None) -> FigureFacts | None:
    """The figure of images the checks judge: one with `grid`'s layout and `count` panels when there is one,
    else the one with most panels showing training images, then most panels; the last of equals."""

    def fit(figure: FigureFacts) -> tuple[bool, bool, int, int]:
        return (
            grid is None or (figure.nrows, figure.ncols) == grid,
            count is None or len(figure.panels) == count,
            sum(panel.matched_index is not None for panel in figure.panels),
            len(figure.panels),
        )

    return max(reversed([f for f in facts.kernel.figures if f.panels]), key=fit, default=None)


def _index_values(variable: VariableFacts) -> list[int] | None:
    value = variable.value
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [v for v in value if isinstance(v, int)]
    return None


class Indices(Params):
    variable: Identifier  # the notebook's variable holding the picked indices
    count: int = Field(ge=1)


def _reads_variable(params: Indices, assignment: Assignment) -> Iterable[str]:
    return (params.variable,)


@check_kind("figures.indices", Indices, variables=_reads_variable)
def indices(facts: Facts, params: Indices, ctx: Context) -> Verdict:
    """A variable holds `count` valid indices into the training images."""
    name, count, n = params.variable, params.count, facts.dataset.n_train
    variable = facts.kernel.variable(name)
    values = _index_values(variable)
    advice = f"pick {count} random indices, e.g. np.random.choice(len({ctx.assignment.name('train_images')}), "
    advice += f"{count}, replace=False)"
    if not variable.present:
        drawn = [p for f in facts.kernel.figures for p in f.panels if p.matched_index is not None]
        if drawn:  # the images were picked, but their indices were not kept under the assignment's name
            return fail(f"`{name}` is not defined: the figure's images were picked without it; {advice}.")
        return missing(facts, f"`{name}` is not defined: {advice}", name)
    if values is None:
        return fail(f"`{name}` is {variable.repr or 'a ' + variable.type_name}, not a list of indices: {advice}.")
    if len(values) != count:
        return fail(f"`{name}` holds {len(values)} values, expected {count}.")
    bad = [v for v in values if not 0 <= v < n]
    if bad:
        return fail(f"`{name}` has values outside 0..{n - 1}: {bad[:3]}.")
    return ok(f"{count} valid indices: {values}.")


class Grid(Params):
    rows: int = Field(ge=1)
    cols: int = Field(ge=1)


@check_kind("figures.grid", Grid)
def grid(facts: Facts, params: Grid, ctx: Context) -> Verdict:
    """A figure shows rows x cols images in a grid of that layout."""
    rows, cols = params.rows, params.cols
    fig = shown_figure(facts, rows * cols, (rows, cols))
    expected = f"{rows * cols} in a {rows}x{cols} grid"
    if fig is None:
        return missing(
            facts, "No figure with images was shown (call plt.imshow for each panel and plt.show())", *_DRAWING
        )
    if (fig.nrows, fig.ncols) != (rows, cols) or len(fig.panels) != rows * cols:
        layout = f"{fig.nrows}x{fig.ncols} grid" if fig.nrows and fig.ncols else "figure without a grid"
        problem = Problem(
            f"The figure has {len(fig.panels)} image panel(s) in a {layout}; expected {expected} "
            f"(plt.subplot({rows}, {cols}, i + 1))",
            absent=len(fig.panels) < rows * cols,  # a loop cut short by an error draws fewer panels
        )
        return failure(facts, [problem], *_DRAWING, fraction=0.5)
    return ok(f"A {rows}x{cols} grid of {rows * cols} images was shown.")


class TrainingImages(Params):
    count: int | None = Field(None, ge=1)  # how many panels must show training images; None: every panel
    indices: Identifier | None = None  # the notebook's index variable the panels must agree with, when it holds indices


def _reads_indices(params: TrainingImages, assignment: Assignment) -> Iterable[str]:
    return (params.indices,) if params.indices else ()


@check_kind("figures.training_images", TrainingImages, variables=_reads_indices)
def training_images(facts: Facts, params: TrainingImages, ctx: Context) -> Verdict:
    """The figure's panels show training images (those the index variable picked, when it is given)."""
    train = ctx.assignment.name("train_images")
    fig = shown_figure(facts, params.count)
    if fig is None:
        return missing(facts, f"No image panels to compare with {train}", *_DRAWING)
    chosen = _index_values(facts.kernel.variable(params.indices)) if params.indices else None
    shows = [p for p in fig.panels if p.matched_index is not None]
    matched = [p for p in shows if chosen is None or p.matched_index in chosen]
    expected = params.count or len(fig.panels)
    which = f"{train}[idx] for one of `{params.indices}`" if chosen is not None else "a training image"
    if len(matched) >= expected:
        return ok(f"Every panel shows {which}.")
    strays = len(shows) - len(matched)
    detail = f" ({strays} show other training images)" if strays else ""
    return fail(f"{len(matched)} of {expected} panels show {which}{detail}.", fraction=len(matched) / expected)


def read_title(title: str, classes: int) -> tuple[int | None, bool]:
    """The label a title states, and whether it states nothing else: "9" is (9, True), "Class 9" and
    "label: 9" are (9, False); a title stating no single label (a one-hot vector, two digits) is (None, False)."""
    text = title.strip()
    if "[" in text:
        return None, False
    labels = [int(n) for n in _INTEGER.findall(text) if int(n) < classes]
    if len(labels) != 1:
        return None, False
    return labels[0], text == str(labels[0])


class Titles(Params):
    count: int | None = Field(None, ge=1)  # how many panels must be titled; None: every panel
    extra_words: float = Field(1.0, ge=0, le=1)  # credit for a right label with other words ("Class 9")


def _title_problem(n: int, panel: PanelFacts, label: int | None, labels_name: str) -> str:
    if not panel.title.strip():
        return f"panel {n} has no title"
    if label is None:
        kind = "a one-hot vector" if "[" in panel.title else "not a single label"
        return (
            f"panel {n}'s title {panel.title[:40]!r} is {kind}: use the integer label (np.argmax({labels_name}[idx]))"
        )
    truth = "an unknown image" if panel.true_label is None else f"a {panel.true_label}"
    return f"panel {n} is titled {label} but shows {truth}"


@check_kind("figures.titles", Titles)
def titles(facts: Facts, params: Titles, ctx: Context) -> Verdict:
    """Each panel's title is the label of the image it shows."""
    fig = shown_figure(facts, params.count)
    if fig is None:
        return missing(facts, "No image panels, so no titles", "title", *_DRAWING)
    readings = [(panel, *read_title(panel.title, facts.dataset.classes)) for panel in fig.panels]
    right = [exact for panel, label, exact in readings if label is not None and label == panel.true_label]
    earned = sum(1.0 if exact else params.extra_words for exact in right)
    expected = params.count or len(fig.panels)
    if earned >= expected:
        return ok("Every title is the label of the image shown.")
    problems = [
        _title_problem(n, panel, label, ctx.assignment.name("train_labels"))
        for n, (panel, label, _) in enumerate(readings, start=1)
        if label is None or label != panel.true_label
    ]
    wordy = right.count(False)
    extra = f" ({wordy} with extra words, worth {params.extra_words:g} each)" if wordy else ""
    detail = ": " + "; ".join(problems[:3]) if problems else ""
    return fail(f"{len(right)} of {expected} titles state the right label{extra}{detail}.", fraction=earned / expected)
