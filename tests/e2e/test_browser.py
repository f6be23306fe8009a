"""The reports in a real browser: they render, their script runs without console errors, and they look right.

With UPDATE_SCREENSHOTS=1 the screenshots are also saved to docs/screenshots/ for the README.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from msgspec.structs import replace

from grader.dataset import build_standin, load_arrays
from grader.export.file_stems import file_stems
from grader.facts import PanelFacts
from grader.report.render import write_reports
from grader.score import StudentGrade
from tests.factories import INDICES, ROOT, make_facts, make_grade, report_context, rubric

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed at {CHROMIUM}"),
]
CTX = report_context(standin=True)


def onehot_titles_figure(tmp_path: Path) -> tuple[bytes, list[int]]:
    """A student's 3x3 figure of real digits titled with one-hot vectors (a common mistake), and the labels."""
    (x_train, y_train), _ = load_arrays(build_standin(tmp_path / "digits.npz", n_train=60, n_test=10))
    fig = Figure(figsize=(4, 4))
    FigureCanvasAgg(fig)
    for n, ax in enumerate(fig.subplots(3, 3).flat):
        ax.imshow(x_train[n], cmap="gray")
        ax.set_title(str(np.eye(10)[y_train[n]][:4]) + "…", fontsize=6)
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue(), [int(v) for v in y_train[:9]]


def kim(tmp_path: Path) -> StudentGrade:
    png, labels = onehot_titles_figure(tmp_path)
    figure = make_facts().kernel.figures[0]
    panels = [
        PanelFacts(i // 3, i % 3, str(np.eye(10)[label]), [28, 28], INDICES[i], label) for i, label in enumerate(labels)
    ]
    model = make_facts().kernel.model
    layers = [
        model.layers[0],
        replace(model.layers[1], config={**model.layers[1].config, "activation": "relu"}),
        model.layers[2],
    ]
    return make_grade(
        "kim_onehot_titles",
        execution={"images": {str(figure.cell): base64.b64encode(png).decode("ascii")}},
        kernel={
            "figures": [replace(figure, panels=panels)],
            "model": replace(model, layers=layers),
        },
    )


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line]


def screenshot(page: Path, tmp_path: Path, name: str) -> Path:
    png = tmp_path / f"{name}.png"
    done = chromium(page.as_uri(), tmp_path / f"profile-{name}", f"--screenshot={png}", "--window-size=1200,1600")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not console_errors(done.stderr), console_errors(done.stderr)
    assert png.is_file() and png.stat().st_size > 10_000
    pixels = imread(str(png))
    assert pixels.shape[:2] == (1600, 1200)
    assert float(pixels[..., :3].std()) > 0.02, "the screenshot is a single colour"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
    return png


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("browser")
    grades = [make_grade("ada_perfect"), kim(tmp_path)]
    write_reports(grades, tmp_path / "reports", CTX, rubric())
    return tmp_path / "reports"


def test_class_summary_renders_and_its_sort_script_runs(reports: Path, tmp_path: Path) -> None:
    screenshot(reports / "index.html", tmp_path, "index")
    dom = chromium((reports / "index.html").as_uri(), tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0 and not console_errors(dom.stderr), dom.stderr[-2000:]
    # The script replaced each header's text by a button: it ran, and the page's CSP allowed it.
    assert len(re.findall(r"<th[^>]*><button", dom.stdout)) == 11


def test_student_report_renders(reports: Path, tmp_path: Path) -> None:
    stem = file_stems(["kim_onehot_titles"])["kim_onehot_titles"]
    screenshot(reports / "students" / f"{stem}.html", tmp_path, "student")
