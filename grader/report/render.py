"""Renders grades as self-contained HTML: one report per student and a class summary.

Everything a student controls (file name, cell sources, tracebacks, figure titles, messages quoting their
values) reaches the templates as plain strings and is escaped by Jinja's autoescape. Only HTML the grader
makes itself is marked safe: Pygments output (which escapes the source), data: URIs of PNG bytes the
grader base64-encodes after checking their header, and the package's own CSS and script.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from grader.archive import Ignored
from grader.atomic_write import atomic_write
from grader.checks.base import shape_text
from grader.export.feedback_notebook import mentions
from grader.export.file_stems import file_stems
from grader.facts import CellFacts, Facts, ModelFacts, PanelFacts
from grader.isolation import REPORT, StageFailure, StageGuard
from grader.keras_facts import LayerFacts
from grader.late import late_message
from grader.near_copies import NearCopy
from grader.output_layout import OutputLayout
from grader.report import charts
from grader.report.failed_import import failed_import
from grader.rubric.model import CheckSpec, Rubric, SectionSpec
from grader.score import CheckResult, SectionResult, StudentGrade, number, rubric_sections
from grader.statuses import FAILED_CELLS, CellStatus

# What one report shows at most, so that a notebook of 400 failing cells gives a report of a few hundred kB
# rendered in well under a second: the first MAX_ERROR_CELLS cells that did not finish (the rest are counted),
# each with MAX_SOURCE_CHARS of source (about 50 kB once highlighted) and MAX_TRACEBACK_CHARS of traceback,
# MAX_STDOUT_CHARS of printed output, MAX_PANELS figure panels, and one image each of the figure and curves.
MAX_ERROR_CELLS = 12
MAX_SOURCE_CHARS = 5_000
MAX_TRACEBACK_CHARS = 4_000
MAX_STDOUT_CHARS = 20_000
MAX_PANELS = 36
# What a section's card shows below its checks: the facts that its kinds of checks read (the student's
# figure, model or training history), whatever the rubric calls the section.
EVIDENCE = (("figures.", "figure"), ("model.", "model"), ("training.", "curves"))
# Pages without script (a student's, a near-copy pair's): nothing loads or runs but inline styles and the
# grader's own data: images.
STUDENT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Progressive enhancement for the class table: click a header to sort. The table reads fine without it.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll("th").forEach(function (th, column) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the reports show beside the grades: when and how they were made, and the calibration."""

    generated_at: str  # ISO time
    grader_version: str
    dataset_description: str
    standin: bool  # show the stand-in data notice
    reference_history: dict[str, list[float]] | None  # the reference run's history, overlaid on curves
    accuracy_threshold: float | None
    reference_accuracy: float | None
    similarity_threshold: float | None = None  # the rubric's; None where near-copies were not looked for
    late_policy: str = ""  # the rubric's late policy, in words
    ignored: tuple[Ignored, ...] = ()  # files found but not graded, listed in the class summary
    reference_model: ModelFacts | None = None  # the reference solution's model, beside each student's
    homework: str = "mnist-grader"  # the rubric's title, in every page's title


@dataclass(frozen=True, slots=True)
class CellView:
    """A code cell that raised, ready to show: highlighted source and the end of its traceback."""

    index: int
    status: CellStatus
    error: str
    source_html: Markup
    traceback: str


@dataclass(frozen=True, slots=True)
class SectionView:
    section: SectionResult
    checks: tuple[CheckResult, ...]  # failed first
    cells: tuple[CellView, ...]  # cells that raised and explain this section's failures
    evidence: str  # "figure", "model", "curves" (see EVIDENCE), or "" for nothing beside the checks


@dataclass(frozen=True, slots=True)
class PanelView:
    title: str
    true_label: int | None
    correct: bool
    shows: str


@dataclass(frozen=True, slots=True)
class FigureView:
    cell: int
    image: Markup | None
    rows: tuple[tuple[PanelView | None, ...], ...]


@dataclass(frozen=True, slots=True)
class LayerRow:
    expected: tuple[str, str, str]  # the reference's layer, output shape, params ("" past its last layer)
    found: tuple[str, str, str]  # ("" where the model lacks a layer)
    mismatch: tuple[bool, ...]  # each cell: differs from the reference (never, without a reference)


@dataclass(frozen=True, slots=True)
class CheckRate:
    section_id: str
    section: str  # its title
    check: CheckSpec
    passed: int
    rate: float
    failed: tuple[str, ...]  # student ids


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("grader.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pts"] = number
    env.filters["shape"] = shape_text
    env.filters["code_spans"] = code_spans
    env.globals["css"] = Markup(resources.files("grader.report").joinpath("report.css").read_text(encoding="utf-8"))
    return env


def code_spans(text: str) -> Markup:
    """Escaped text in which the grader's `backticked` names are shown as code (balanced pairs only)."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: show the text as it is
        return escape(text)
    return Markup("").join(Markup("<code>{}</code>").format(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def _highlighted(source: str) -> Markup:
    if len(source) > MAX_SOURCE_CHARS:
        source = source[:MAX_SOURCE_CHARS] + "\n# ... (source cut here by the grader)"
    # Pygments escapes the source; inline styles keep the report a single file.
    return Markup(highlight(source, PythonLexer(), HtmlFormatter(noclasses=True)))


def _cell_view(cell: CellFacts) -> CellView:
    first_line = cell.error_value.splitlines()[0][:500] if cell.error_value else ""
    error = f"{cell.error_name[:200]}: {first_line}" if cell.error_name else cell.status.replace("_", " ")
    traceback = "\n".join(cell.traceback_tail)
    if len(traceback) > MAX_TRACEBACK_CHARS:
        traceback = "... (start cut here by the grader)\n" + traceback[-MAX_TRACEBACK_CHARS:]
    return CellView(cell.index, cell.status, error, _highlighted(cell.source), traceback)


def _evidence(spec: SectionSpec | None) -> str:
    """What the section's card shows below its checks (see EVIDENCE): decided by the kinds of most of its checks."""
    kinds = [check.kind for check in spec.checks] if spec is not None else []
    counts = {shown: sum(kind.startswith(prefix) for kind in kinds) for prefix, shown in EVIDENCE}
    best = max(counts, key=lambda shown: counts[shown])
    return best if counts[best] else ""


def _sections(grade: StudentGrade, rubric: Rubric) -> tuple[list[SectionView], list[CellView], int]:
    """The rubric's sections with failed checks first, each cell that raised placed once (in the first section
    whose keywords it mentions and whose checks failed, else in the list of other errors), and how many such
    cells are not shown."""
    sections = rubric_sections(grade, rubric)
    specs = {spec.id: spec for spec in rubric.sections}
    keywords = {spec.id: spec.keywords for spec in rubric.sections}
    failing = {s.id for s in sections if not all(c.passed for c in s.checks)}
    placed: dict[str, list[CellView]] = {s.id: [] for s in sections}
    others: list[CellView] = []
    failed = [cell for cell in grade.facts.execution.cells if cell.status in FAILED_CELLS]
    for cell in failed[:MAX_ERROR_CELLS]:
        home = next((s.id for s in sections if s.id in failing and mentions(cell.source, keywords[s.id])), None)
        (placed[home] if home else others).append(_cell_view(cell))
    views = [
        SectionView(s, tuple(sorted(s.checks, key=lambda c: c.passed)), tuple(placed[s.id]), _evidence(specs.get(s.id)))
        for s in sections
    ]
    return views, others, max(0, len(failed) - MAX_ERROR_CELLS)


def _panel_view(panel: PanelFacts) -> PanelView:
    if panel.matched_index is None:
        shows = "an image not found among the training images"
    else:
        shows = f"training image {panel.matched_index}"
    titled = panel.true_label is not None and panel.title.strip() == str(panel.true_label)
    return PanelView(panel.title, panel.true_label, titled, shows)


def _figure(facts: Facts) -> FigureView | None:
    """The student's figure with the most image panels (the last of equals), its image as the notebook showed
    it, and what the grader read from each panel."""
    figures = [f for f in facts.kernel.figures if f.panels]
    if not figures:
        return None
    fig = sorted(figures, key=lambda f: len(f.panels))[-1]
    encoded = facts.execution.images.get(str(fig.cell))
    png = charts.decode_png(encoded) if encoded else None
    panels = fig.panels[:MAX_PANELS]
    ncols = max(1, min(fig.ncols or 3, 6))
    positions = [(p.row, p.col) for p in panels]
    if len(set(positions)) != len(positions) or not all(0 <= r < MAX_PANELS and 0 <= c < ncols for r, c in positions):
        positions = [(n // ncols, n % ncols) for n in range(len(panels))]  # fill row by row instead
    grid = {pos: _panel_view(panel) for pos, panel in zip(positions, panels, strict=True)}
    nrows = max((r for r, _ in grid), default=-1) + 1
    rows = tuple(tuple(grid.get((r, c)) for c in range(ncols)) for r in range(nrows))
    return FigureView(fig.cell, charts.png_data_uri(png) if png else None, rows)


# The arguments that tell layers apart in the model table, in this order when a layer has several.
_LAYER_ARGUMENTS = ("units", "filters", "kernel_size", "pool_size", "rate", "activation")


def _argument_text(value: object) -> str:
    return "(" + ", ".join(map(str, value)) + ")" if isinstance(value, list) else str(value)


def _layer_cells(layer: LayerFacts) -> tuple[str, str, str]:
    """A layer as the model table shows it: the layer, its output shape, its parameter count."""
    shown = [layer.config[key] for key in _LAYER_ARGUMENTS if layer.config.get(key) not in (None, "linear")]
    name = f"{layer.class_name} ({', '.join(map(_argument_text, shown))})" if shown else layer.class_name
    shape = shape_text(layer.output_shape) if layer.output_shape is not None else "unknown"
    return name, shape, f"{layer.params:,}"


def _model_rows(layers: list[LayerFacts], reference: ModelFacts | None) -> list[LayerRow]:
    """The student's layers beside the reference solution's, where there is one, differences marked."""
    expected_layers = reference.layers if reference is not None else []
    rows = []
    for i in range(max(len(expected_layers), len(layers))):
        expected = _layer_cells(expected_layers[i]) if i < len(expected_layers) else ("", "", "")
        found = _layer_cells(layers[i]) if i < len(layers) else ("", "", "")
        mismatch = tuple(reference is not None and e != f for e, f in zip(expected, found, strict=True))
        rows.append(LayerRow(expected, found, mismatch))
    return rows


def _student_page(grade: StudentGrade, rubric: Rubric, ctx: ReportContext, env: Environment) -> str:
    facts = grade.facts
    sections, other_errors, cells_left_out = _sections(grade, rubric)
    history = facts.kernel.history.values if facts.kernel.history else {}
    curves = charts.training_curves(history, ctx.reference_history)
    hidden = [c for s in grade.sections for c in s.checks if c.hidden]
    stdout = facts.execution.stdout
    if len(stdout) > MAX_STDOUT_CHARS:
        stdout = stdout[:MAX_STDOUT_CHARS] + "\n... (cut here by the grader)"
    return env.get_template("student.html.j2").render(
        grade=grade,
        ctx=ctx,
        standin=ctx.standin or facts.dataset.standin,
        sections=sections,
        other_errors=other_errors,
        cells_left_out=cells_left_out,
        max_error_cells=MAX_ERROR_CELLS,
        failed_import=failed_import(facts.execution.cells),
        figure=_figure(facts),
        curves=charts.png_data_uri(curves) if curves else None,
        model=facts.kernel.model,
        model_rows=_model_rows(facts.kernel.model.layers, ctx.reference_model) if facts.kernel.model.present else [],
        stdout=stdout,
        checks_total=sum(s.points for s in grade.sections),
        late_note=late_message(grade, rubric.late),
        hidden_checks=len(hidden),
        hidden_points=sum(c.max for c in hidden),
        csp=STUDENT_CSP,
    )


def student_page(grade: StudentGrade, rubric: Rubric, ctx: ReportContext) -> str:
    """One student's report, as `write_reports` writes it to students/<student>.html (`grade serve` serves it)."""
    return _student_page(grade, rubric, ctx, _environment())


def _passed(grade: StudentGrade, section_id: str, check_id: str) -> bool:
    return any(c.passed for s in grade.sections if s.id == section_id for c in s.checks if c.id == check_id)


def _check_rates(grades: list[StudentGrade], rubric: Rubric) -> list[CheckRate]:
    """Every rubric check with the share of students who passed it, hardest first (then rubric order)."""
    if not grades:
        return []
    ranked = []
    for s_index, section in enumerate(rubric.sections):
        for c_index, check in enumerate(section.checks):
            failed = tuple(g.student for g in grades if not _passed(g, section.id, check.id))
            passed = len(grades) - len(failed)
            rate = CheckRate(section.id, section.title, check, passed, passed / len(grades), failed)
            ranked.append(((rate.rate, s_index, c_index), rate))
    return [rate for _, rate in sorted(ranked, key=lambda pair: pair[0])]


def pair_page(layout: OutputLayout, pair: NearCopy, stems: dict[str, str]) -> Path:
    return layout.pair_page(stems[pair.first], stems[pair.second])


def _pair_page(
    pair: NearCopy, stems: dict[str, str], ctx: ReportContext, env: Environment, layout: OutputLayout
) -> str:
    page = pair_page(layout, pair, stems)
    return env.get_template("pair.html.j2").render(
        pair=pair,
        stems=stems,
        ctx=ctx,
        csp=STUDENT_CSP,
        index_link=layout.link(layout.index, page),
        report_link=lambda student: layout.link(layout.student_report(stems[student]), page),
    )


def _index_page(
    grades: list[StudentGrade],
    rubric: Rubric,
    stems: dict[str, str],
    ctx: ReportContext,
    env: Environment,
    layout: OutputLayout,
    pairs: Sequence[NearCopy] = (),
) -> str:
    graded = [g for g in grades if g.status == "graded"]
    totals = [g.total for g in graded]
    max_total = rubric.max_total
    section_means = []
    if graded:
        by_student = [rubric_sections(g, rubric) for g in graded]
        for i, spec in enumerate(rubric.sections):
            section_means.append((spec, statistics.fmean(sections[i].points for sections in by_student)))
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return env.get_template("index.html.j2").render(
        grades=sorted(grades, key=lambda g: (g.student.casefold(), g.student)),
        stems=stems,
        ctx=ctx,
        n_graded=len(graded),
        mean=statistics.fmean(totals) if totals else None,
        median=statistics.median(totals) if totals else None,
        max_total=max_total,
        sections=rubric.sections,
        sections_of=lambda grade: rubric_sections(grade, rubric),
        section_means=section_means,
        rates=_check_rates(graded, rubric),
        histogram=charts.png_data_uri(charts.totals_histogram(totals, max_total)) if totals else None,
        script=Markup(SORT_SCRIPT),
        n_adjusted=sum(g.adjusted for g in grades),
        pairs=[(pair, layout.link(pair_page(layout, pair, stems), layout.index)) for pair in pairs],
        report_link=lambda student: layout.link(layout.student_report(stems[student]), layout.index),
        csp=f"{STUDENT_CSP}; script-src 'sha256-{script_hash}'",
    )


def _failed_page(grade: StudentGrade, ctx: ReportContext, env: Environment) -> str:
    """The page of a student whose report could not be rendered: who, the status and why, nothing else."""
    return env.get_template("failed.html.j2").render(grade=grade, ctx=ctx, csp=STUDENT_CSP)


def write_reports(
    grades: list[StudentGrade],
    out: Path,
    ctx: ReportContext,
    rubric: Rubric,
    guard: StageGuard | None = None,
    pairs: Sequence[NearCopy] = (),
    only: set[str] | None = None,
) -> list[StudentGrade]:
    """Writes out/index.html (the class), out/students/<student>.html (one per student, file-safe name) and
    out/near-copies/<first>--<second>.html (one per near-copy pair, side by side), each listing the sections
    and checks of `rubric`.

    A student whose page fails to render gets a page with their status and the grader's message instead;
    the grades are returned marked with that failure, as the index shows them. `only` limits the student
    pages rewritten to those ids (watch mode re-renders only what changed).
    """
    guard = guard or StageGuard()
    env = _environment()
    stems = file_stems(g.student for g in grades)
    layout = OutputLayout(out)
    layout.students_dir.mkdir(parents=True, exist_ok=True)
    for grade in grades:
        if only is not None and grade.student not in only:
            continue

        def failed(_: StageFailure, grade: StudentGrade = grade) -> str:
            return _failed_page(guard.mark(grade), ctx, env)

        atomic_write(
            layout.student_report(stems[grade.student]),
            guard.run(REPORT, grade.student, failed, _student_page, grade, rubric, ctx, env),
        )
    layout.near_copies_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for pair in pairs:
        path = pair_page(layout, pair, stems)
        atomic_write(path, _pair_page(pair, stems, ctx, env, layout))
        written.add(path)
    for stale in layout.near_copies_dir.glob("*.html"):  # a pair of an earlier run that is no longer flagged
        if stale not in written:
            stale.unlink()
    marked = [guard.mark(g) for g in grades]
    atomic_write(layout.index, _index_page(marked, rubric, stems, ctx, env, layout, pairs))
    return marked
