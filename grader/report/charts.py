"""Small PNG charts for the reports (training curves, the class histogram) and checked PNG data URIs.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot: no display, no global figure
state, so rendering reports in a worker or a test never touches the host process's backend.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Sequence

from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A student's own figure larger than this is not embedded: it would make the report heavy to mail.
MAX_STUDENT_IMAGE_BYTES = 600_000
_SIZE = (8.0, 2.8)  # inches; at _DPI each chart stays well under 60 kB
# A history comes from the student's kernel and can hold anything a float can. A curve draws at most
# _MAX_POINTS epochs (evenly spaced, first and last kept), and leaves a gap where a value is NaN, infinite
# or beyond +-_MAX_VALUE: no loss or accuracy worth reading is that large, and matplotlib cannot scale an
# axis to 1e308.
_MAX_POINTS = 500
_MAX_VALUE = 1e6
_DPI = 80
_TRAIN, _VALIDATION = "#1f77b4", "#d62728"


def png_data_uri(png: bytes) -> Markup:
    """A data: URI for PNG bytes, safe to place in a src attribute because the grader encoded it."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("not a PNG image")
    return Markup("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def decode_png(encoded: str) -> bytes | None:
    """The bytes of a base64 PNG from a notebook's output, or None if it is not one (or too large)."""
    if len(encoded) > MAX_STUDENT_IMAGE_BYTES * 4 // 3 + 8:
        return None
    try:
        png = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return png if png.startswith(PNG_MAGIC) else None


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # No Software/date metadata: the same data gives byte-identical reports.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _drawable(values: Sequence[float]) -> tuple[list[int], list[float]]:
    """Epoch numbers (from 1) and values to draw: at most _MAX_POINTS, unplottable values as gaps (NaN)."""
    n = len(values)
    epochs = (
        sorted({round(i * (n - 1) / (_MAX_POINTS - 1)) for i in range(_MAX_POINTS)}) if n > _MAX_POINTS else range(n)
    )
    shown = [values[i] for i in epochs]
    return [i + 1 for i in epochs], [v if math.isfinite(v) and abs(v) <= _MAX_VALUE else math.nan for v in shown]


def _accuracy_key(history: dict[str, list[float]]) -> str | None:
    """The training-accuracy metric of a Keras history: 'categorical_accuracy', 'accuracy', 'acc', ..."""
    names = [k for k in history if not k.startswith("val_") and "acc" in k]
    return min(names, key=len) if names else None


def _plot(ax: Axes, history: dict[str, list[float]], key: str, *, dashed: bool, label: str) -> bool:
    drawn = False
    for name, colour, what in ((key, _TRAIN, "train"), (f"val_{key}", _VALIDATION, "validation")):
        values = history.get(name)
        if not values:
            continue
        epochs, drawable = _drawable(values)
        if all(math.isnan(v) for v in drawable):
            continue
        ax.plot(
            epochs,
            drawable,
            color=colour,
            linestyle="--" if dashed else "-",
            alpha=0.55 if dashed else 1.0,
            linewidth=1.2 if dashed else 1.8,
            marker=None if dashed else "o",
            markersize=2.5,
            label=f"{what} ({label})" if dashed else what,
        )
        drawn = True
    return drawn


def training_curves(history: dict[str, list[float]], reference: dict[str, list[float]] | None) -> bytes | None:
    """Loss and accuracy per epoch, train and validation, with the reference run dashed; None without data."""
    if not history or not any(history.values()):
        return None
    # Fixed margins rather than a layout engine: constrained layout doubles the drawing time, and a class
    # is re-rendered on every rescore.
    fig = Figure(figsize=_SIZE)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.18)
    for ax, kind in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        key = "loss" if kind == "loss" else _accuracy_key(history)
        drawn = key is not None and _plot(ax, history, key, dashed=False, label="you")
        if reference and key is not None:
            ref_key = "loss" if kind == "loss" else _accuracy_key(reference)
            if ref_key is not None:
                _plot(ax, reference, ref_key, dashed=True, label="reference")
        ax.set_title(kind if key is None else key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=6, frameon=False)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    return _png(fig)


def totals_histogram(totals: Sequence[float], max_total: float) -> bytes:
    """A histogram of the class's totals in bins of 5% of the maximum."""
    fig = Figure(figsize=_SIZE)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.96)
    ax = fig.subplots()
    top = max_total or 100.0
    edges = [top * i / 20 for i in range(21)]
    ax.hist([min(max(t, 0.0), top) for t in totals], bins=edges, color=_TRAIN, edgecolor="white")
    ax.set_xlim(0, top)
    ax.set_xlabel("total points", fontsize=8)
    ax.set_ylabel("students", fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
