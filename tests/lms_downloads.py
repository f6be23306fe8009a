"""LMS downloads as tests build them (a Canvas zip, a D2L zip with its grades export), and what grading one wrote.

The same downloads are graded end to end in real kernels (tests/e2e/test_ingest.py) and with faked runs
(tests/test_pipeline.py), where naming, resubmissions and late arithmetic are decided before any kernel runs.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import yaml

from tests.conftest import ROOT, fast_rubric

REFERENCE = ROOT / "reference" / "solution.ipynb"
LATE_PERCENT = 50
GREETING = 'print("hello'  # the start of every notebook here that only prints


def notebook_bytes(*sources: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.writes(nb).encode("utf-8")


def prepare_only() -> bytes:
    """The reference's imports and data preparation: the prepare section's points, in seconds."""
    nb = nbformat.read(str(REFERENCE), as_version=4)
    return notebook_bytes(*[c.source for c in nb.cells if c.cell_type == "code"][:2])


def late_rubric(folder: Path) -> Path:
    path = fast_rubric(folder)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["late"] = {"penalty_percent": LATE_PERCENT}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def common_args(folder: Path, small_dataset: Path) -> list[str | Path]:
    return ["--dataset", small_dataset, "--rubric", late_rubric(folder), "--reference", REFERENCE, "--jobs", "1"]


def by_student(out: Path) -> dict[str, dict[str, Any]]:
    return {s["student"]: s for s in json.loads((out / "grades.json").read_text("utf-8"))["students"]}


def earned(entry: dict[str, Any]) -> float:
    return sum(s["points"] for s in entry["sections"].values())


def canvas_zip(folder: Path) -> Path:
    """A Canvas "Download Submissions" zip: a resubmission (the newer one late), a PDF, a path out, a link."""
    archive = folder / "zips" / "submissions.zip"
    archive.parent.mkdir()
    printing = notebook_bytes(GREETING + ' from doejohn")')
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("smithjane_48213_1930044_mnist-1.ipynb", printing)  # replaced by -2: never run
        zf.writestr("smithjane_LATE_48213_1930044_mnist-2.ipynb", prepare_only())
        zf.writestr("doejohn_50001_1930100_hw.ipynb", printing)
        zf.writestr("doejohn_50001_1930100_notes.pdf", b"%PDF-1.4")
        zf.writestr("../escape.ipynb", printing)
        link = zipfile.ZipInfo("leelink_50002_1930200_hw.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(REFERENCE))
    return archive


D2L_DUE = "2026-12-01T23:59:00-06:00"
D2L_CARA_OLD = "118815-463470 - Cara Diaz - Dec 1, 2026 1100 PM/mnist.ipynb"
D2L_EXPORT = (
    "OrgDefinedId,Username,Last Name,First Name,Email,HW1 Points Grade <Numeric MaxPoints:100>,End-of-Line Indicator\n"
    "#20067930,cdiaz,Diaz,Cara,cdiaz@example.edu,,#\n"
    "#20067931,kpark,Park,Kim,kpark@example.edu,,#\n"
    "#20067932,jngo,Ngo,Jean-Luc,jngo@example.edu,,#\n"
    "#20067935,ezip,Zip,Eve,ezip@example.edu,,#\n"
)


def d2l_download(folder: Path) -> tuple[Path, Path, Path]:
    """A D2L download zip, a rubric with a due date and a per-day late policy, and D2L's grades export.

    Three notebooks print (Cara on time after a resubmission, Kim 3 minutes late within the grace, Dana 9 days
    late) and one earns the prepare section's points (Jean-Luc 1.5 days late: 20% off). Eve's notebook
    inflates 1000 times: refused alone, without a kernel.
    """
    rubric = late_rubric(folder)
    data = yaml.safe_load(rubric.read_text(encoding="utf-8"))
    data["due"] = D2L_DUE
    data["late"] = {"penalty_percent_per_day": 10, "grace_minutes": 5, "max_days": 5}
    rubric.write_text(yaml.safe_dump(data), encoding="utf-8")
    archive = folder / "HW1 Download Dec 12, 2026 910 AM.zip"
    printing = notebook_bytes(GREETING + '")')
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(D2L_CARA_OLD, printing)
        zf.writestr("118901-463470 - Cara Diaz - Dec 1, 2026 1145 PM/mnist.ipynb", printing)
        zf.writestr("118817-463471 - Kim Park - Dec 2, 2026 1202 AM - mnist.ipynb", printing)
        zf.writestr("118820-463475 - Jean-Luc Ngô - Dec 3, 2026 1159 AM - hw - final.ipynb", prepare_only())
        zf.writestr("118830-463480 - Dana Nobody - Dec 10, 2026 1159 PM/mnist.ipynb", printing)
        zf.writestr("118840-463490 - Eve Zip - Dec 1, 2026 1000 PM/mnist.ipynb", b'"' + b"0" * (8 << 20) + b'"')
        zf.writestr("index.html", b"<html></html>")
        zf.writestr(".DS_Store", b"")
    export = folder / "d2l-export.csv"
    export.write_text(D2L_EXPORT, encoding="utf-8-sig")
    return archive, rubric, export
