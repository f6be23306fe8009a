"""Visualize: 9 random indices, a 3x3 grid of those images, each titled with its integer label."""

from __future__ import annotations

import re

from grader.checks import Check, Context, Verdict, cell_trouble, fail, ok
from grader.facts import Facts, FigureFacts


def _grid(facts: Facts) -> FigureFacts | None:
    """The figure that best answers the task: 9 image panels in a 3x3 grid, else the one with most panels."""
    figures = [f for f in facts.kernel.figures if f.panels]
    if not figures:
        return None
    exact = [f for f in figures if (f.nrows, f.ncols) == (3, 3) and len(f.panels) == 9]
    return (exact or sorted(figures, key=lambda f: len(f.panels)))[-1]


def indices(facts: Facts, ctx: Context) -> Verdict:
    values = facts.kernel.indices
    if values is None:
        return fail(
            f"`indices` is {facts.kernel.indices_note}: pick 9 random indices, e.g. "
            "np.random.choice(len(x_train), 9, replace=False)." + cell_trouble(facts, "indices")
        )
    if len(values) != 9:
        return fail(f"`indices` holds {len(values)} values, expected 9.")
    bad = [v for v in values if not 0 <= v < facts.dataset.n_train]
    if bad:
        return fail(f"`indices` has values outside 0..{facts.dataset.n_train - 1}: {bad[:3]}.")
    return ok(f"9 valid indices: {values}.")


def grid(facts: Facts, ctx: Context) -> Verdict:
    fig = _grid(facts)
    if fig is None:
        return fail(
            "No figure with images was shown (call plt.imshow for each panel and plt.show())."
            + cell_trouble(facts, "imshow", "subplot")
        )
    if (fig.nrows, fig.ncols) != (3, 3) or len(fig.panels) != 9:
        return fail(
            f"The figure has {len(fig.panels)} image panel(s) in a {fig.nrows}x{fig.ncols} grid; "
            "expected 9 in a 3x3 grid (plt.subplot(3, 3, i + 1))." + cell_trouble(facts, "imshow", "subplot"),
            fraction=0.5 if len(fig.panels) >= 1 else None,
        )
    return ok("A 3x3 grid of 9 images was shown.")


def pixels(facts: Facts, ctx: Context) -> Verdict:
    fig = _grid(facts)
    if fig is None or not fig.panels:
        return fail("No image panels to compare with x_train." + cell_trouble(facts, "imshow", "subplot"))
    chosen = set(facts.kernel.indices or [])
    matched = [p for p in fig.panels if p.matched_index is not None and p.matched_index in chosen]
    if len(matched) == 9:
        return ok("Every panel shows x_train[idx] for one of `indices`.")
    strays = [p for p in fig.panels if p.matched_index is not None and p.matched_index not in chosen]
    detail = f" ({len(strays)} show other training images)" if strays else ""
    return fail(
        f"{len(matched)} of 9 panels show an image x_train[idx] with idx in `indices`{detail}.",
        fraction=len(matched) / 9,
    )


def _title_label(title: str) -> int | None:
    text = title.strip()
    return int(text) if re.fullmatch(r"\d", text) else None


def titles(facts: Facts, ctx: Context) -> Verdict:
    fig = _grid(facts)
    if fig is None or not fig.panels:
        return fail("No image panels, so no titles." + cell_trouble(facts, "title"))
    right = 0
    problems = []
    for n, panel in enumerate(fig.panels, start=1):
        label = _title_label(panel.title)
        if panel.true_label is not None and label == panel.true_label:
            right += 1
        elif not panel.title.strip():
            problems.append(f"panel {n} has no title")
        elif label is None:
            kind = "a one-hot vector" if "[" in panel.title else "not a single digit"
            problems.append(
                f"panel {n}'s title {panel.title[:40]!r} is {kind}: use the integer label (np.argmax(y_train[idx]))"
            )
        else:
            truth = "an unknown image" if panel.true_label is None else f"a {panel.true_label}"
            problems.append(f"panel {n} is titled {label} but shows {truth}")
    if right == 9:
        return ok("Every title is the integer label of the image shown.")
    return fail(f"{right} of 9 titles are correct: " + "; ".join(problems[:3]) + ".", fraction=right / 9)


CHECKS: dict[str, Check] = {"indices": indices, "grid": grid, "pixels": pixels, "titles": titles}
