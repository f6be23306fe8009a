"""Finding submissions: plain folders, Canvas and Moodle downloads, zips read safely, and only regular files."""

from __future__ import annotations

import os
import stat
import threading
import unicodedata
import zipfile
from pathlib import Path

import pytest

from grader.archive import ArchiveError, Ignored, ZipBounds, extract_notebooks
from grader.discover import CANVAS_NAME, Origin, Submission, discover, open_submissions
from grader.errors import GraderError
from grader.execution.notebook import NotebookUnreadable, read_notebook
from grader.files import FileTooLarge, NotRegularFile, read_regular_file

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def touch(path: Path, content: bytes = NOTEBOOK) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def found(root: Path) -> list[Submission]:
    return discover(root).submissions


def students(subs: list[Submission]) -> dict[str, str]:
    return {s.student: s.path.name for s in subs}


# --- discover -------------------------------------------------------------------------------------------


def test_folder_of_notebooks_is_one_student_per_file(tmp_path: Path) -> None:
    touch(tmp_path / "bob.ipynb")
    touch(tmp_path / "ada.ipynb")
    touch(tmp_path / "notes.txt")
    discovery = discover(tmp_path)
    assert [s.student for s in discovery.submissions] == ["ada", "bob"]
    assert all(s.note == "" for s in discovery.submissions)
    assert discovery.ignored == [Ignored("notes.txt", "not a notebook")]


def test_a_folder_holding_one_notebook_is_named_for_the_student(tmp_path: Path) -> None:
    touch(tmp_path / "ada" / "Assignment 1.ipynb")
    touch(tmp_path / "bob" / "mnist.ipynb")
    # A folder with several notebooks is not one student's: its files keep their own names.
    touch(tmp_path / "late" / "cy.ipynb")
    touch(tmp_path / "late" / "dee.ipynb")
    assert students(found(tmp_path)) == {
        "ada": "Assignment 1.ipynb",
        "bob": "mnist.ipynb",
        "cy": "cy.ipynb",
        "dee": "dee.ipynb",
    }


def test_a_single_notebook_can_be_graded(tmp_path: Path) -> None:
    path = touch(tmp_path / "ada" / "ada_perfect.ipynb")
    assert found(path) == [Submission("ada_perfect", path)]


def test_a_single_file_must_be_a_notebook(tmp_path: Path) -> None:
    with pytest.raises(GraderError, match="not a notebook"):
        discover(touch(tmp_path / "ada.py", b"print(1)"))


def test_duplicate_ids_are_both_graded_with_a_note(tmp_path: Path) -> None:
    touch(tmp_path / "lee.ipynb")
    touch(tmp_path / "lee" / "homework.ipynb")  # a one-notebook folder, so also "lee"
    by_file = {s.path.name: s for s in found(tmp_path)}
    assert sorted(s.student for s in by_file.values()) == ["lee", "lee (2)"]
    # Each report names the other file, so the teacher can tell the two apart.
    assert by_file["lee.ipynb"].note.startswith("Duplicate student id 'lee': also submitted as lee/homework.ipynb")
    assert by_file["homework.ipynb"].note.startswith("Duplicate student id 'lee': also submitted as lee.ipynb")


def test_no_notebooks_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "readme.txt", b"hello")
    with pytest.raises(GraderError, match="no notebooks"):
        discover(tmp_path)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GraderError, match="no such file or folder"):
        discover(tmp_path / "nowhere")


def test_checkpoints_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    touch(tmp_path / "ada" / "ada.ipynb")
    touch(tmp_path / "ada" / ".ipynb_checkpoints" / "ada-checkpoint.ipynb")
    touch(tmp_path / ".ipynb_checkpoints" / "bob-checkpoint.ipynb")
    touch(tmp_path / "._bob.ipynb")  # macOS resource fork
    touch(tmp_path / "bob.ipynb")
    assert students(found(tmp_path)) == {"ada": "ada.ipynb", "bob": "bob.ipynb"}


def test_non_ascii_names_are_normalised_to_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "José")
    touch(tmp_path / f"{decomposed}.ipynb")
    touch(tmp_path / unicodedata.normalize("NFD", "Zoë") / "hw.ipynb")
    subs = found(tmp_path)
    assert sorted(s.student for s in subs) == ["José", "Zoë"]
    assert all(unicodedata.is_normalized("NFC", s.student) for s in subs)


def test_the_same_name_in_two_normal_forms_is_a_duplicate(tmp_path: Path) -> None:
    touch(tmp_path / f"{unicodedata.normalize('NFC', 'José')}.ipynb")
    touch(tmp_path / f"{unicodedata.normalize('NFD', 'José')}.ipynb")
    assert sorted(s.student for s in found(tmp_path)) == ["José", "José (2)"]


# --- Canvas and Moodle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("smithjane_LATE_48213_1930044_mnist-2", ("smithjane", True, "48213", "1930044", "mnist-2")),
        ("smithjane_48213_1930044_mnist", ("smithjane", False, "48213", "1930044", "mnist")),
        # An original file name with underscores and digits of its own stays whole.
        ("leeann_7_12_hw_3_4_final", ("leeann", False, "7", "12", "hw_3_4_final")),
        ("de_la_cruz_LATE_501_9_Assignment 1", ("de_la_cruz", True, "501", "9", "Assignment 1")),
    ],
)
def test_canvas_names_are_parsed(name: str, expected: tuple[str, bool, str, str, str]) -> None:
    match = CANVAS_NAME.match(name)
    assert match is not None
    assert (match["name"], match["late"] is not None, match["user"], match["submission"], match["original"]) == expected


@pytest.mark.parametrize("name", ["ada_perfect", "smith_48213_mnist", "hw_1", "LATE_1_2"])
def test_other_names_are_not_canvas_names(name: str) -> None:
    assert CANVAS_NAME.match(name) is None


def test_canvas_download_one_student_per_user_the_newest_resubmission_graded(tmp_path: Path) -> None:
    for name in (
        "smithjane_48213_1900001_mnist.ipynb",  # an earlier submission id
        "smithjane_LATE_48213_1930044_mnist-1.ipynb",
        "smithjane_LATE_48213_1930044_mnist-2.ipynb",  # same submission, file uploaded again: the newest
        "smithjane_LATE_48213_1930044_mnist-10.ipynb",  # -10 is after -2 (numbers, not text)
        "doejohn_50001_1930100_homework.ipynb",
    ):
        touch(tmp_path / name)
    touch(tmp_path / "doejohn_50001_1930100_notes.pdf", b"%PDF")
    discovery = discover(tmp_path)
    by_id = {s.student: s for s in discovery.submissions}
    assert set(by_id) == {"48213", "50001"}
    jane = by_id["48213"]
    assert jane.path.name == "smithjane_LATE_48213_1930044_mnist-10.ipynb"
    assert jane.origin == Origin(
        name="smithjane",
        lms="canvas",
        lms_id="48213",
        late=True,
        superseded=(
            "smithjane_48213_1900001_mnist.ipynb",
            "smithjane_LATE_48213_1930044_mnist-1.ipynb",
            "smithjane_LATE_48213_1930044_mnist-2.ipynb",
        ),
    )
    assert by_id["50001"].origin == Origin(name="doejohn", lms="canvas", lms_id="50001")
    reasons = {i.path: i.reason for i in discovery.ignored}
    assert reasons["doejohn_50001_1930100_notes.pdf"] == "not a notebook"
    assert "older submission of smithjane (48213)" in reasons["smithjane_48213_1900001_mnist.ipynb"]
    assert len(reasons) == 4


def test_moodle_download_one_folder_per_submission(tmp_path: Path) -> None:
    touch(tmp_path / "Ana Lima_771_assignsubmission_file_" / "mnist.ipynb")
    touch(tmp_path / "Bo Chen_772_assignsubmission_file_" / "hw" / "Untitled.ipynb")
    touch(tmp_path / "Bo Chen_772_assignsubmission_onlinetext_" / "onlinetext.html", b"<p>hi</p>")
    discovery = discover(tmp_path)
    assert [(s.student, s.origin.name, s.origin.lms) for s in discovery.submissions] == [
        ("771", "Ana Lima", "moodle"),
        ("772", "Bo Chen", "moodle"),
    ]
    assert [i.path for i in discovery.ignored] == ["Bo Chen_772_assignsubmission_onlinetext_/onlinetext.html"]


# --- only regular files ----------------------------------------------------------------------------------


def test_links_and_pipes_named_like_notebooks_become_submissions_that_cannot_be_read(tmp_path: Path) -> None:
    secret = touch(tmp_path.parent / f"{tmp_path.name}-solution.ipynb")
    folder = tmp_path / "subs"
    touch(folder / "ada.ipynb")
    folder.joinpath("link.ipynb").symlink_to(secret)
    os.mkfifo(folder / "pipe.ipynb")
    folder.joinpath("elsewhere").symlink_to(tmp_path.parent, target_is_directory=True)
    discovery = discover(folder)
    assert [s.student for s in discovery.submissions] == ["ada", "link", "pipe"]
    assert discovery.ignored == [Ignored("elsewhere", "a symbolic link (links are not followed)")]
    with pytest.raises(NotRegularFile, match="symbolic link"):
        read_regular_file(folder / "link.ipynb")
    with pytest.raises(NotebookUnreadable, match="named pipe"):
        read_notebook(folder / "pipe.ipynb", 1 << 20)


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.ipynb")
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: outcome.append(_raised(read_regular_file, tmp_path / "x.ipynb")))
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # unblock the thread before failing, so pytest can exit
        with open(tmp_path / "x.ipynb", "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], NotRegularFile) and "named pipe (FIFO)" in str(outcome[0].strerror)


def _raised(function, *args) -> BaseException | None:  # noqa: ANN001
    try:
        function(*args)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


def test_a_linked_folder_is_not_walked(tmp_path: Path) -> None:
    touch(tmp_path / "outside" / "stolen.ipynb")
    touch(tmp_path / "subs" / "ada.ipynb")
    (tmp_path / "subs" / "more").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert [s.student for s in discover(tmp_path / "subs").submissions] == ["ada"]


# --- zips ----------------------------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_a_canvas_zip_is_extracted_safely_and_discovered(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "submissions.zip",
        {
            "smithjane_LATE_48213_1930044_mnist-2.ipynb": NOTEBOOK,
            "doejohn_50001_1930100_hw.ipynb": NOTEBOOK,
            "doejohn_50001_1930100_notes.pdf": b"%PDF",
            "../escape.ipynb": NOTEBOOK,
            "/etc/absolute.ipynb": NOTEBOOK,
            "a/../../up.ipynb": NOTEBOOK,
            "C:\\\\windows.ipynb": NOTEBOOK,
        },
        links={"link.ipynb": "../../../reference/solution.ipynb"},
    )
    with open_submissions(archive) as discovery:
        assert [s.student for s in discovery.submissions] == ["50001", "48213"]
        extracted = discovery.submissions[0].path.parent
        assert sorted(p.name for p in extracted.rglob("*")) == sorted(s.path.name for s in discovery.submissions)
        reasons = {i.path: i.reason for i in discovery.ignored}
    assert not extracted.exists()  # removed once grading is done
    outside = "its path leads outside the extraction folder"
    assert reasons == {
        "doejohn_50001_1930100_notes.pdf": "not a notebook",
        "../escape.ipynb": outside,
        "/etc/absolute.ipynb": outside,
        "a/../../up.ipynb": outside,
        "C:\\\\windows.ipynb": outside,
        "link.ipynb": "a symbolic link (links are not followed)",
    }
    assert not list(tmp_path.parent.rglob("escape.ipynb")) and not list(tmp_path.rglob("up.ipynb"))


def test_a_zip_bomb_is_a_clear_error(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"a_1_2_x.ipynb": b"0" * (8 << 20)})  # 8 MB of one byte: ~8 KB
    with pytest.raises(ArchiveError, match=r"inflates more than 200 times .*zip bomb"):
        extract_notebooks(archive, tmp_path / "out")


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        (ZipBounds(max_total_bytes=3000, max_ratio=10**6), "allowed for all notebooks together"),
        (ZipBounds(max_member_bytes=900, max_ratio=10**6), "allowed for one notebook"),
        (ZipBounds(max_members=3), "4 members, more than the 3"),
    ],
)
def test_zip_bounds(tmp_path: Path, bounds: ZipBounds, words: str) -> None:
    archive = make_zip(tmp_path / "big.zip", {f"s{i}.ipynb": os.urandom(1000) for i in range(4)})
    with pytest.raises(ArchiveError, match=words):
        extract_notebooks(archive, tmp_path / "out", bounds)


def test_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "class.zip").write_bytes(b"not a zip")
    with pytest.raises(GraderError, match="not a readable zip file"), open_submissions(tmp_path / "class.zip"):
        pass


def test_a_zip_without_notebooks(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "class.zip", {"readme.txt": b"hi"})
    with pytest.raises(GraderError, match="no notebooks"), open_submissions(archive):
        pass


def test_a_file_over_the_readers_bound_is_refused_and_one_within_it_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.ipynb"
    path.write_bytes(b"x" * 1001)
    with pytest.raises(FileTooLarge):
        read_regular_file(path, 1000)
    assert read_regular_file(path, 1001) == b"x" * 1001
