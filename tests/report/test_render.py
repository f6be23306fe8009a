"""The HTML reports: complete, failures first, self-contained, and safe to open whatever a student wrote."""

from __future__ import annotations

import base64
import dataclasses
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from msgspec import structs

from grader.export.file_stems import file_stems
from grader.facts import CellFacts, ExecutionFacts, KernelFacts, ModelFacts, PanelFacts, VariableFacts
from grader.keras_facts import LayerFacts
from grader.near_copies import NearCopy, Segment
from grader.report.render import MAX_ERROR_CELLS, SORT_SCRIPT, ReportContext, write_reports
from grader.rubric.model import Rubric
from grader.score import StudentGrade, number
from tests.factories import (
    CELL_SOURCES,
    four_section_rubric,
    grid_png,
    make_facts,
    make_grade,
    report_context,
    rubric,
)

CTX = report_context(standin=False)
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
ESCAPED_IMG = "&lt;img src=x onerror=alert(1)&gt;"


class Page(HTMLParser):
    """The tags, attributes, element ids and script bodies of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: set[str] = set()
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if "id" in dict(attrs):
            self.ids.add(str(dict(attrs)["id"]))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def urls(self) -> list[str]:
        return [str(a[k]) for _, a in self.tags for k in ("src", "href") if a.get(k) is not None]


def render(tmp_path: Path, grades: list[StudentGrade], ctx: ReportContext = CTX, under: Rubric | None = None) -> Path:
    out = tmp_path / "reports"
    write_reports(grades, out, ctx, under or rubric())
    return out


def student_html(out: Path, student: str) -> str:
    return (out / "students" / f"{file_stems([student])[student]}.html").read_text(encoding="utf-8")


def crashed_visualize_cells(
    error_value: str = "module 'matplotlib.pyplot' has no attribute 'imshw'",
) -> list[CellFacts]:
    cells = list(make_facts().execution.cells)
    cells[2] = CellFacts(
        index=3,
        status="error",
        source=CELL_SOURCES[2].replace("imshow", "imshw"),
        error_name="AttributeError",
        error_value=error_value,
        traceback_tail=["Traceback (most recent call last)", f"AttributeError: {error_value}"],
    )
    return cells


def hal() -> StudentGrade:
    """The visualize cell raised, so no figure was drawn."""
    return make_grade("hal", execution={"cells": crashed_visualize_cells()}, kernel={"figures": []})


def hostile() -> StudentGrade:
    """Markup everywhere a student's text reaches the report."""
    cells = crashed_visualize_cells(error_value=SCRIPT + IMG)
    cells[2] = CellFacts(
        index=3,
        status="error",
        source=f'# {IMG}\nlabel = "{SCRIPT}"\nplt.subplot(3, 3, 1)\nplt.imshw(x)',
        error_name="ValueError",
        error_value=SCRIPT + IMG,
        traceback_tail=[f'  File "{SCRIPT}", line 1', f"ValueError: {IMG}"],
    )
    fig = make_facts().kernel.figures[0]
    panels = [PanelFacts(0, 0, IMG, [28, 28], 7, 3), *fig.panels[1:]]
    kernel = {
        "figures": [type(fig)(cell=fig.cell, nrows=3, ncols=3, panels=panels)],
        "model": structs.replace(perfect_model(), layers=[LayerFacts(SCRIPT, output_shape=[None, 784])]),
    }
    facts = make_facts(execution={"cells": cells, "stdout": SCRIPT + IMG, "message": IMG}, kernel=kernel)
    return make_grade(SCRIPT + IMG, facts=facts)


def perfect_model() -> ModelFacts:
    return make_facts().kernel.model


def test_every_check_appears_with_its_title_points_and_message(tmp_path: Path) -> None:
    grade = hal()
    html = student_html(render(tmp_path, [grade]), "hal")
    ids = Page(html).ids
    for section in grade.sections:
        assert f"section-{section.id}" in ids
        for check in section.checks:
            assert f"check-{section.id}-{check.id}" in ids
            assert check.id in html
    assert "No figure with images was shown" in html
    assert f'<div class="points">{number(grade.total)}</div>' in html


def test_failed_checks_come_first_in_each_section(tmp_path: Path) -> None:
    grade = hal()
    html = student_html(render(tmp_path, [grade]), "hal")
    for section in grade.sections:
        order = sorted(section.checks, key=lambda c: html.index(f'id="check-{section.id}-{c.id}"'))
        passed = [c.passed for c in order]
        assert passed == sorted(passed), f"{section.id}: a passed check precedes a failed one"
    visualize = next(s for s in grade.sections if s.id == "visualize")
    assert not all(c.passed for c in visualize.checks) and any(c.passed for c in visualize.checks)


def test_an_erroring_cell_is_shown_once_highlighted_in_the_section_it_explains(tmp_path: Path) -> None:
    html = student_html(render(tmp_path, [hal()]), "hal")
    assert html.count("Cell 3 raised") == 1
    visualize = html[html.index('id="section-visualize"') : html.index('id="section-build"')]
    assert "Cell 3 raised: AttributeError" in visualize
    assert "imshw" in visualize and '<pre class="traceback">' in visualize
    assert 'style="color:' in visualize  # Pygments with inline styles: no stylesheet needed
    assert 'id="errors"' not in html


def test_a_cell_outside_every_section_goes_to_the_errors_block(tmp_path: Path) -> None:
    cells = [*make_facts().execution.cells]
    cells[0] = CellFacts(
        1, "error", "import tensorflow_addons", "ModuleNotFoundError", "No module named 'tensorflow_addons'"
    )
    html = student_html(render(tmp_path, [make_grade("ann", execution={"cells": cells})]), "ann")
    errors = html[html.index('id="errors"') :]
    assert "ModuleNotFoundError" in errors and html.count("Cell 1 raised") == 1


def test_a_failed_import_is_said_up_front_with_the_errors_that_follow_from_it(tmp_path: Path) -> None:
    cells = [*make_facts().execution.cells]
    cells[0] = CellFacts(1, "error", "import seaborn as sns", "ModuleNotFoundError", "No module named 'seaborn'")
    cells[2] = CellFacts(3, "error", CELL_SOURCES[2], "NameError", "name 'sns' is not defined")
    html = student_html(render(tmp_path, [make_grade("ann", execution={"cells": cells})]), "ann")
    notice = html[html.index('id="failed-import"') : html.index('id="execution"')]
    assert "Cell 1: <code>import seaborn as sns</code> failed" in notice
    assert "No module named &#39;seaborn&#39;" in notice
    assert "The later errors (NameError) follow from it." in notice
    assert 'id="failed-import"' not in student_html(render(tmp_path / "hal", [hal()]), "hal")


@pytest.mark.parametrize("page", ["student", "index"])
def test_student_text_is_escaped_everywhere(tmp_path: Path, page: str) -> None:
    grade = hostile()
    out = render(tmp_path, [grade, make_grade("ada")])
    html = student_html(out, grade.student) if page == "student" else (out / "index.html").read_text("utf-8")
    assert SCRIPT not in html and IMG not in html and "<img src=x" not in html
    assert ESCAPED_SCRIPT in html and ESCAPED_IMG in html
    parsed = Page(html)
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)], "an event-handler attribute leaked"
    assert parsed.scripts == ([] if page == "student" else [SORT_SCRIPT])


def test_hostile_text_reaches_every_student_controlled_place_escaped(tmp_path: Path) -> None:
    grade = hostile()
    html = student_html(render(tmp_path, [grade]), grade.student)
    title = html[html.index("<title>") : html.index("</title>")]
    assert ESCAPED_SCRIPT in title  # the student id
    visualize = html[html.index('id="section-visualize"') : html.index('id="section-build"')]
    assert '# "&gt;&lt;img src=x onerror=alert(1)&gt;' in visualize  # the cell source, through Pygments
    assert "ValueError: &#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in visualize  # the traceback
    panels = visualize[visualize.index('class="panels"') :]
    assert ESCAPED_IMG in panels  # the figure title
    assert "Cell 3 raised: ValueError: " + ESCAPED_SCRIPT in visualize  # the error value
    build = html[html.index('id="section-build"') : html.index('id="section-train"')]
    assert ESCAPED_SCRIPT in build  # a layer's class name


def data_uri_pngs(html: str) -> list[bytes]:
    images = []
    for url in Page(html).urls():
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            assert header == "data:image/png;base64"
            images.append(base64.b64decode(payload, validate=True))
    return images


def test_images_are_png_data_uris_and_the_students_figure_is_theirs(tmp_path: Path) -> None:
    out = render(tmp_path, [make_grade("ada"), hal()])
    student = data_uri_pngs(student_html(out, "ada"))
    assert len(student) == 2  # the student's figure and the training curves
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in student)
    assert grid_png() in student
    index = data_uri_pngs((out / "index.html").read_text("utf-8"))
    assert len(index) == 1 and index[0].startswith(b"\x89PNG\r\n\x1a\n")


def test_an_image_that_is_not_a_png_is_left_out(tmp_path: Path) -> None:
    fake = base64.b64encode(b"<svg onload=alert(1)>").decode()
    grade = make_grade("ada", execution={"images": {"3": fake}})
    html = student_html(render(tmp_path, [grade]), "ada")
    assert len(data_uri_pngs(html)) == 1  # only the training curves
    assert "no image of it was kept" in html


def test_the_figure_reading_shows_each_panel_title_label_and_verdict(tmp_path: Path) -> None:
    fig = make_facts().kernel.figures[0]
    panels = [PanelFacts(0, 0, "[0. 0. 0. 1. 0. 0. 0. 0. 0. 0.]", [28, 28], 7, 3), *fig.panels[1:]]
    grade = make_grade("kim", kernel={"figures": [type(fig)(fig.cell, 3, 3, panels)]})
    html = student_html(render(tmp_path, [grade]), "kim")
    table = html[html.index('class="panels"') : html.index("</table>", html.index('class="panels"'))]
    assert table.count("<tr>") == 3 and table.count("<td") == 9
    assert table.count("✓") == 8 and table.count("✗") == 1
    assert "[0. 0. 0. 1." in table and "true label: 3" in table


def test_model_table_highlights_layers_that_differ(tmp_path: Path) -> None:
    model = make_facts().kernel.model
    layers = [
        model.layers[0],
        LayerFacts("Dense", {"units": 128, "activation": "relu"}, [None, 128], 100_480),
        model.layers[2],
    ]
    html = student_html(
        render(tmp_path, [make_grade("eli", kernel={"model": structs.replace(model, layers=layers)})]), "eli"
    )
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", html, re.S)
    flagged = [row for row in rows if "mismatch" in row]
    assert len(flagged) == 1 and "Dense (128, relu)" in flagged[0]
    assert "100,480" in html and "1,290" in html


def test_the_model_table_compares_with_the_reference_solutions_model_or_shows_the_students_alone(
    tmp_path: Path,
) -> None:
    model = make_facts().kernel.model
    conv = LayerFacts("Conv2D", output_shape=[None, 26, 26, 32], params=320)
    reference = structs.replace(model, layers=[conv, *model.layers], total_params=102_090)
    html = student_html(
        render(tmp_path, [make_grade("ada")], dataclasses.replace(CTX, reference_model=reference)), "ada"
    )
    table = html[html.index("Model summary") : html.index("</table>", html.index("Model summary"))]
    assert "Conv2D" in table and "(None, 26, 26, 32)" in table and "102,090" in table
    assert table.count('class="mismatch"') == 4 and "missing" in table  # each row is a layer off, the last missing
    html = student_html(render(tmp_path, [make_grade("ada")], dataclasses.replace(CTX, reference_model=None)), "ada")
    table = html[html.index("Model summary") : html.index("</table>", html.index("Model summary"))]
    assert "Reference layer" not in table and "mismatch" not in table
    assert "Dense (128, sigmoid)" in table and "101,770" in table


def test_training_curves_are_drawn_or_their_absence_said(tmp_path: Path) -> None:
    grade = make_grade("ada", kernel={"history": None})
    html = student_html(render(tmp_path, [grade]), "ada")
    assert "No training history was recorded." in html


def test_header_shows_integrity_flags_limits_and_the_standin_notice(tmp_path: Path) -> None:
    typed = VariableFacts(True, "list", "[0.05, 0.99]", value=[0.05, 0.99], from_evaluate=False)
    grade = make_grade(
        "leo",
        facts=make_facts(
            variables={"score": typed},
            execution={"limits_hit": ["notebook_timeout_s"], "status": "notebook_timeout"},
        ),
    )
    assert grade.integrity_flags
    html = student_html(render(tmp_path, [grade], dataclasses.replace(CTX, standin=True)), "leo")
    assert html.index("Integrity flags") < html.index('id="section-prepare"')
    assert "was not returned by any call to model.evaluate" in html
    assert "notebook_timeout_s" in html and "Stand-in data." in html
    # what the stand-in is (shared/data/README.md): real digits, shifted; nothing made up
    assert "real handwritten digits shifted" in html and "synthetic" not in html


def test_a_note_for_review_is_shown_and_changes_no_points(tmp_path: Path) -> None:
    grade = make_grade("mia", facts=make_facts(reevaluation={"accuracy": 0.99}))
    assert grade.review and grade.total == 100
    html = student_html(render(tmp_path, [grade], CTX), "mia")
    assert "For review (no points were changed)" in html and "far above the reference" in html


def test_an_unreadable_notebook_still_gets_a_report(tmp_path: Path) -> None:
    execution = ExecutionFacts("unreadable", "not a notebook: invalid JSON", [], "", [], 0.0)
    grade = make_grade(
        "zed", execution=execution, kernel=KernelFacts.empty(rubric().probe_request()), reevaluation={"ok": False}
    )
    assert grade.status == "error"
    out = render(tmp_path, [grade, make_grade("ada")])
    html = student_html(out, "zed")
    assert "not a notebook: invalid JSON" in html and "No model was found." in html
    index = (out / "index.html").read_text("utf-8")
    assert "could not be read" in index


def test_a_student_report_is_one_small_file(tmp_path: Path) -> None:
    out = render(tmp_path, [hal(), make_grade("ada")])
    for student in ("ada", "hal"):
        html = student_html(out, student)
        assert len(html.encode("utf-8")) < 1_000_000
        assert all(url.startswith(("#", "data:")) for url in Page(html).urls()), Page(html).urls()
        assert "<link" not in html and "@import" not in html and "url(" not in html
        assert '<meta name="viewport"' in html and "@media print" in html


def test_index_links_resolve_to_reports_and_their_checks(tmp_path: Path) -> None:
    grades = [make_grade("ada"), hal(), make_grade("Zoë Ünal"), make_grade("zoe unal")]
    out = render(tmp_path, grades)
    index = (out / "index.html").read_text("utf-8")
    links = [u for u in Page(index).urls() if not u.startswith(("#", "data:"))]
    assert len({link.split("#")[0] for link in links}) == len(grades)
    for link in links:
        path, _, anchor = link.partition("#")
        target = out / path
        assert target.is_file(), link
        if anchor:
            assert anchor in Page(target.read_text("utf-8")).ids, link
    assert sorted(p.name for p in (out / "students").iterdir()) == sorted(
        f"{s}.html" for s in file_stems(g.student for g in grades).values()
    )


def test_index_lists_checks_hardest_first_with_who_failed(tmp_path: Path) -> None:
    out = render(tmp_path, [make_grade("ada"), hal(), make_grade("eve", kernel={"summary_calls": 0})])
    index = (out / "index.html").read_text("utf-8")
    rates = [float(r) for r in re.findall(r'<span class="mono">(\d+)%</span>', index)]
    assert rates == sorted(rates) and rates[0] < 100
    summary_row = index[index.index("model.summary() was called") :].split("</tr>")[0]
    assert "students/eve.html#check-build-summary" in summary_row
    assert "students/ada.html" not in summary_row and "students/hal.html" not in summary_row
    grid_row = index[index.index("A figure of 9 images in a 3x3 grid is shown") :].split("</tr>")[0]
    assert "students/hal.html#check-visualize-grid" in grid_row
    assert "0.9200" in index and "0.8900" in index  # the calibration
    assert Page(index).scripts == [SORT_SCRIPT]


def test_file_stems_are_safe_unique_and_stable() -> None:
    ids = ["ada", "Ada", "zoë ünal", "../../etc/passwd", "CON", "a b", "a_b", "", "日本語"]
    stems = file_stems(ids)
    assert stems["ada"] == "ada" and stems == file_stems(ids)
    assert len({s.casefold() for s in stems.values()}) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in stems.values())
    assert stems["CON"] != "CON"


def test_an_empty_class_gets_an_index(tmp_path: Path) -> None:
    out = render(tmp_path, [])
    assert "No graded notebooks." in (out / "index.html").read_text("utf-8")
    assert list((out / "students").iterdir()) == []


def test_a_figure_whose_panels_have_no_grid_position_is_laid_out_row_by_row(tmp_path: Path) -> None:
    fig = make_facts().kernel.figures[0]
    panels = [structs.replace(p, row=-1, col=-1) for p in fig.panels[:4]]
    grade = make_grade("ola", kernel={"figures": [structs.replace(fig, nrows=None, ncols=None, panels=panels)]})
    html = student_html(render(tmp_path, [grade]), "ola")
    table = html[html.index('class="panels"') : html.index("</table>", html.index('class="panels"'))]
    assert table.count("<tr>") == 2 and table.count("true label:") == 4


def render_400_failing_cells(out: Path | None = None) -> str:
    """The student report of a notebook of 400 failing cells, each with a long source and traceback."""
    source = ("\n".join(CELL_SOURCES) * 40)[:20_000]  # code at the executor's own cap, to be highlighted
    cells = [
        CellFacts(i, "error", source, "ValueError", "bad " * 300, [f"line {n} " + "y" * 490 for n in range(8)])
        for i in range(1, 401)
    ]
    grade = make_grade("big", execution={"cells": cells, "stdout": "z" * 64_000})
    with tempfile.TemporaryDirectory() as scratch:
        return student_html(render(out or Path(scratch), [grade]), "big")


def test_a_notebook_of_400_failing_cells_gives_a_small_report(tmp_path: Path) -> None:
    html = render_400_failing_cells(tmp_path)
    assert len(html.encode("utf-8")) < 2_000_000
    assert html.count('class="cell-error"') == MAX_ERROR_CELLS
    assert f"{400 - MAX_ERROR_CELLS} more cell(s) that did not finish are left out" in html
    assert "source cut here by the grader" in html


def hostile_pair(first: str, second: str, score: float = 0.9) -> NearCopy:
    code = f"x = 1\n</pre>{SCRIPT}\n{IMG}\n"
    parts = (Segment("x = 1\n", False), Segment(code[6:], True))
    return NearCopy(first, second, score, parts, parts)


def test_each_near_copy_pair_has_a_page_of_its_own(tmp_path: Path) -> None:
    """Issue 18.11: `a--b` with `c`, and `a` with `b--c`, are two pairs and two pages, each linked once."""
    names = ["a--b", "c", "a", "b--c"]
    pairs = [hostile_pair("a--b", "c"), hostile_pair("a", "b--c")]
    out = tmp_path / "reports"
    write_reports([make_grade(n) for n in names], out, CTX, rubric(), pairs=pairs)
    pages = sorted(p.name for p in (out / "near-copies").iterdir())
    assert pages == ["a+b--c.html", "a--b+c.html"]
    index = (out / "index.html").read_text("utf-8")
    assert sorted(set(re.findall(r'href="near-copies/([^"]+)"', index))) == pages


def test_near_copies_are_listed_highest_first_each_with_a_side_by_side_page(tmp_path: Path) -> None:
    names = ["ada", "Zoë Ünal", "eve", "<b>mal</b>"]
    grades = [make_grade(n) for n in names]
    pairs = [hostile_pair("Zoë Ünal", "ada", 1.0), hostile_pair("<b>mal</b>", "eve", 0.75)]
    out = tmp_path / "reports"
    (out / "near-copies").mkdir(parents=True)
    (out / "near-copies" / "old--pair.html").write_text("stale")
    write_reports(grades, out, dataclasses.replace(CTX, similarity_threshold=0.7), rubric(), pairs=pairs)
    index = (out / "index.html").read_text("utf-8")
    section = index[index.index('id="near-copies"') : index.index('id="students"')]
    assert "at least 70% of their own code" in section
    assert re.findall(r'<td class="num">(\d+)%</td>', section) == ["100", "75"]
    assert "&lt;b&gt;mal&lt;/b&gt;" in section and "<b>mal" not in section
    stems = file_stems(names)
    pages = sorted(p.name for p in (out / "near-copies").iterdir())
    assert pages == sorted([f"{stems['Zoë Ünal']}+{stems['ada']}.html", f"{stems['<b>mal</b>']}+{stems['eve']}.html"])
    for link in [u for u in Page(section).urls() if "near-copies/" in u]:
        page = (out / link).read_text("utf-8")
        parsed = Page(page)
        assert parsed.scripts == [] and "script-src" not in page  # no script at all on this page
        assert page.count(f"<mark>{ESCAPED_SCRIPT}") == 0 and page.count(ESCAPED_SCRIPT) == 2
        code = page[page.index('class="side-by-side"') :]
        assert code.count("<mark>") == 2 and "&lt;/pre&gt;" in code and ESCAPED_IMG in code
        for url in parsed.urls():
            path, _, anchor = url.partition("#")
            assert (out / "near-copies" / path).resolve().is_file(), url
            if anchor:
                assert anchor in Page((out / "near-copies" / path).read_text("utf-8")).ids


def test_without_near_copies_the_summary_says_so(tmp_path: Path) -> None:
    out = render(tmp_path, [make_grade("ada")], dataclasses.replace(CTX, similarity_threshold=0.7))
    index = (out / "index.html").read_text("utf-8")
    assert "No pair of submissions shares that much of its own code." in index
    assert list((out / "near-copies").iterdir()) == []


def four_section_class() -> list[StudentGrade]:
    """Graded under a rubric with no visualize section; eve's model lacks a summary, hal's figure cell raised."""
    under = four_section_rubric()
    eve = make_grade("eve", under=under, kernel={"summary_calls": 0})
    hal = make_grade("hal", under=under, execution={"cells": crashed_visualize_cells()}, kernel={"figures": []})
    return [make_grade("ada", under=under), eve, hal]


def test_a_report_has_the_sections_of_the_rubric_and_no_figure_without_a_visualize_section(tmp_path: Path) -> None:
    out = render(tmp_path, four_section_class(), under=four_section_rubric())
    page = Page(student_html(out, "ada"))
    assert {i for i in page.ids if i.startswith("section-")} == {
        f"section-{s}" for s in ("prepare", "build", "train", "evaluate")
    }
    html = student_html(out, "ada")
    assert not [tag for tag, attrs in Page(html).tags if tag == "figure" or attrs.get("class") == "panels"]
    assert len(data_uri_pngs(html)) == 1  # the training curves, not the student's figure
    assert "Dense (128, sigmoid)" in html and "Training curves" in html
    hal_html = student_html(out, "hal")
    assert "Cell 3 raised" in hal_html[hal_html.index('id="errors"') :]  # no section's code: with other errors


def test_the_class_summary_has_a_bar_and_a_column_per_rubric_section(tmp_path: Path) -> None:
    out = render(tmp_path, four_section_class(), under=four_section_rubric())
    index = (out / "index.html").read_text("utf-8")
    bars = index[index.index("Mean points per section") : index.index('id="checks"')]
    assert re.findall(r"<span>(.*?)</span>", bars) == [s.title for s in four_section_rubric().sections]
    assert re.findall(r'<span class="value">(.*?)</span>', bars) == ["10.0 / 10", "48.3 / 50", "20.0 / 20", "10.0 / 10"]
    students = index[index.index('id="students"') :]
    header = students.split("</thead>")[0]
    assert re.findall(r'<th class="num" title="[^"]*">(\w+)</th>', header) == ["Prepare", "Build", "Train", "Evaluate"]
    eve_row = students[students.index(">eve</a>") :].split("</tr>")[0]
    assert re.findall(r'<td class="num" data-sort="[^"]*">([^<]*)</td>', eve_row)[:4] == ["10", "45", "20", "10"]
    assert "check-visualize" not in index and "students/eve.html#check-build-summary" in index
