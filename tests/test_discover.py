"""Finding submissions: plain folders, Canvas and Moodle downloads, zips read safely, and only regular files."""

from __future__ import annotations

import os
import stat
import threading
import unicodedata
import zipfile
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path, PurePosixPath

import pytest

from grader.archive import ArchiveError, Ignored, ZipBounds, extract_notebooks
from grader.discover import CANVAS_NAME, Origin, Submission, d2l_time, discover, open_submissions
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


def test_a_moodle_folder_inside_a_submission_is_that_students(tmp_path: Path) -> None:
    """Issue 18.2: a student's own folder named like another's submission claims nobody: the download's top-level
    folder names the submission, and two notebooks for one student are both graded and both reports say so."""
    touch(tmp_path / "Ana Lima_771_assignsubmission_file_" / "mnist.ipynb", b"ana")
    mallory = tmp_path / "Mal Lory_770_assignsubmission_file_"
    touch(mallory / "mnist.ipynb", b"mallory")
    touch(mallory / "Ana Lima_771_assignsubmission_file_" / "mnist.ipynb", b"mallory's copy")
    subs = {s.student: s for s in discover(tmp_path).submissions}
    assert sorted(subs) == ["770", "770 (2)", "771"]
    assert subs["771"].path.read_bytes() == b"ana" and subs["771"].origin.name == "Ana Lima"
    assert {subs["770"].origin.name, subs["770 (2)"].origin.name} == {"Mal Lory"}
    assert all("Duplicate student id '770'" in subs[s].note for s in ("770", "770 (2)"))
    assert subs["771"].note == ""


# --- D2L Brightspace --------------------------------------------------------------------------------------

D2L_CARA = "118815-463470 - Cara Diaz - Dec 1, 2026 1100 PM"
D2L_CARA_AGAIN = "118901-463470 - Cara Diaz - Dec 2, 2026 1015 AM"
D2L_KIM = "118817-463471 - Kim Park - Dec 2, 2026 1201 AM - mnist.ipynb"
D2L_JEAN = "118820-463475 - Jean-Luc Ngô - Marie - Dec 1, 2026 923 AM - hw - final.ipynb"


def d2l_zip(path: Path) -> Path:
    """A D2L download as D2L zips it: folders and flat files, a resubmission, its index.html, macOS's litter."""
    return make_zip(
        path,
        {
            f"{D2L_CARA}/mnist.ipynb": NOTEBOOK,
            f"{D2L_CARA}/notes.txt": b"old notes",
            f"{D2L_CARA_AGAIN}/mnist.ipynb": NOTEBOOK,
            D2L_KIM: NOTEBOOK,
            unicodedata.normalize("NFD", D2L_JEAN): NOTEBOOK,
            "index.html": b"<html></html>",
            "__MACOSX/._index.html": b"",
            ".DS_Store": b"",
        },
    )


def test_a_d2l_download_folder_and_flat_forms(tmp_path: Path) -> None:
    chicago = timezone(timedelta(hours=-6))
    with open_submissions(d2l_zip(tmp_path / "HW1 Download Dec 3, 2026 910 AM.zip"), zone=chicago) as discovery:
        subs = {s.student: s for s in discovery.submissions}
        reasons = {i.path: i.reason for i in discovery.ignored}
    assert sorted(subs) == ["Cara Diaz", "Jean-Luc Ngô - Marie", "Kim Park"]
    cara = subs["Cara Diaz"]
    assert cara.path.parent.name == D2L_CARA_AGAIN  # the newest of her two submissions
    assert cara.origin == Origin(
        name="Cara Diaz",
        lms="d2l",
        lms_id="118901-463470",
        superseded=(f"{D2L_CARA}/mnist.ipynb",),
        submitted_at=datetime(2026, 12, 2, 10, 15, tzinfo=chicago),
    )
    assert subs["Kim Park"].origin.submitted_at == datetime(2026, 12, 2, 0, 1, tzinfo=chicago)
    jean = subs["Jean-Luc Ngô - Marie"].origin
    assert (jean.lms_id, jean.submitted_at) == ("118820-463475", datetime(2026, 12, 1, 9, 23, tzinfo=chicago))
    assert "an older submission of Cara Diaz" in reasons[f"{D2L_CARA}/mnist.ipynb"]
    assert "118901-463470 - Cara Diaz - Dec 2, 2026 1015 AM/mnist.ipynb is graded" in reasons[f"{D2L_CARA}/mnist.ipynb"]
    assert reasons["index.html"] == reasons[f"{D2L_CARA}/notes.txt"] == "not a notebook"
    assert reasons[".DS_Store"] == reasons["__MACOSX/._index.html"] == "not a notebook"


def test_an_extracted_d2l_download_lists_what_the_lms_and_macos_added(tmp_path: Path) -> None:
    touch(tmp_path / D2L_KIM)
    touch(tmp_path / "index.html", b"<html></html>")
    touch(tmp_path / ".DS_Store", b"")
    touch(tmp_path / "__MACOSX" / "._x", b"")
    discovery = discover(tmp_path)
    assert [s.student for s in discovery.submissions] == ["Kim Park"]
    assert [(i.path, i.reason.split(",")[0]) for i in discovery.ignored] == [
        (".DS_Store", "macOS's folder settings"),
        ("__MACOSX", "macOS's copy of file attributes"),
        ("index.html", "the LMS's index of the download"),
    ]


def test_one_d2l_student_is_found_by_name_without_case_or_accents(tmp_path: Path) -> None:
    touch(tmp_path / "1-2 - José Díaz - Dec 1, 2026 1100 PM - a.ipynb")
    touch(tmp_path / "3-2 - jose diaz - Dec 1, 2026 1130 PM - b.ipynb")
    [sub] = discover(tmp_path).submissions
    assert (sub.student, sub.path.name) == ("jose diaz", "3-2 - jose diaz - Dec 1, 2026 1130 PM - b.ipynb")


@pytest.mark.parametrize(
    "stamp",
    ["Feb 30, 2026 1100 PM", "Dec 1, 2026 1375 PM", "Dec 1, 2026 1300 PM", "Dex 1, 2026 1100 PM", "Dec 1, 26 100 AM"],
)
def test_a_malformed_d2l_time_stamp_is_an_error_naming_the_file(tmp_path: Path, stamp: str) -> None:
    touch(tmp_path / f"1-2 - Kim Park - {stamp} - mnist.ipynb")
    with pytest.raises(GraderError, match=rf"1-2 - Kim Park - {stamp} - mnist.ipynb: D2L time stamp '{stamp}'"):
        discover(tmp_path)


def test_a_d2l_time_stamp_reads_noon_and_midnight() -> None:
    assert d2l_time("Dec 1, 2026 1200 PM", "x", UTC).hour == 12
    assert d2l_time("Dec 1, 2026 1205 AM", "x", UTC).hour == 0
    assert d2l_time("Dec 1, 2026 905 PM", "x", UTC).time() == time(21, 5)


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


def test_a_member_over_a_per_member_bound_costs_that_member_only(tmp_path: Path) -> None:
    """Issue 18.1: an honest-looking notebook that compresses 1000 times, and one over the size bound, are refused
    alone; the class is graded, and each refused notebook is still its student's submission, with the reason."""
    zeros = b'{"cells": [], "metadata": {}, "outputs": "' + b"0" * (8 << 20) + b'"}'  # 8 MB: ~8 KB compressed
    archive = make_zip(
        tmp_path / "class.zip",
        {
            "bomb_1_2_mnist.ipynb": zeros,
            "big_3_4_mnist.ipynb": os.urandom(5 << 20),
            "ada_5_6_mnist.ipynb": NOTEBOOK,
        },
    )
    bounds = ZipBounds(max_member_bytes=4 << 20)
    with open_submissions(archive, bounds) as discovery:
        subs = {s.student: s for s in discovery.submissions}
        assert not subs["1"].path.exists() and not subs["3"].path.exists() and subs["5"].path.exists()
        reasons = {i.path: i.reason for i in discovery.ignored}
    assert subs["5"].refused == ""
    assert "inflates more than 200 times its compressed size" in subs["1"].refused
    assert "inflates past the 4 MB allowed for one notebook" in subs["3"].refused
    assert reasons["bomb_1_2_mnist.ipynb"] == f"not graded: {subs['1'].refused}"


def test_a_member_whose_data_is_corrupt_costs_that_member_only(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "class.zip", {"a_1_2_x.ipynb": NOTEBOOK * 50, "b_3_4_x.ipynb": NOTEBOOK})
    data = bytearray(archive.read_bytes())
    start = data.index(b"a_1_2_x.ipynb") + len("a_1_2_x.ipynb")  # the first member's compressed bytes follow
    data[start + 5 : start + 40] = bytes(35)
    archive.write_bytes(bytes(data))
    extraction = extract_notebooks(archive, tmp_path / "out")
    assert list(extraction.refused) == [PurePosixPath("a_1_2_x.ipynb")]
    assert (tmp_path / "out" / "b_3_4_x.ipynb").read_bytes() == NOTEBOOK
    assert not (tmp_path / "out" / "a_1_2_x.ipynb").exists()


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        (ZipBounds(max_total_bytes=3000, max_ratio=10**6), "allowed for all notebooks together"),
        (ZipBounds(max_members=3), "4 members, more than the 3"),
    ],
)
def test_whole_archive_bounds_refuse_the_zip(tmp_path: Path, bounds: ZipBounds, words: str) -> None:
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
