"""Hostile notebooks graded through the real CLI, in one batch: the sandbox holds, limits bite, faults are
reported with the points earned before them, faked results earn nothing, and the reports stay inert.

The batch runs once per session (`batch`); each test reads what it needs from grades.json, the HTML
reports, the facts cache (a notebook's `FINDINGS` line) or the host's filesystem.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grader.facts import Facts, KernelFacts
from grader.sandbox.cgroup import process_tree
from grader.sandbox.host import bwrap_path
from grader.sandbox.limits import inode_cap
from tests.conftest import ROOT, grader_environ, run_grade, run_grade_measured
from tests.security import make_notebooks
from tests.security.conftest import (
    LIMITS,
    REFERENCE,
    SecurityEnv,
    cached_facts,
    facts_with_source,
    findings,
    grades_by_student,
)

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]

PREPARE_POINTS = 10
# The grader's own peak over the batch: its baseline (reports and charts included) plus, for each of the two
# notebooks running at once, the bound README states at output_kb = 256 (under 16 MB). Measured: 130 MB. Before
# the bound, the display updates alone kept 400 MB in the grader and the print held 100 MB several times over.
GRADER_PEAK_MB = 300


class Listener:
    """A TCP server on every host address that records whatever reaches it, for as long as the batch runs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, (address, _) = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append((address, conn.recv(1024)))
                except OSError:
                    self.received.append((address, b""))

    @contextmanager
    def running(self) -> Iterator[Listener]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
            self.sock.close()


def host_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (the kernel must reach none of them)."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, suppress(OSError):
        probe.connect(("10.255.255.255", 1))  # no packet is sent; it picks the outgoing address
        found.add(probe.getsockname()[0])
    with suppress(OSError):
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    return sorted(a for a in found if not a.startswith("127."))


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Batch:
    env: SecurityEnv
    submissions: Path
    out: Path
    result: subprocess.CompletedProcess[str]
    seconds: float
    grades: dict[str, dict[str, Any]]
    received: list[tuple[str, bytes]]
    token: str
    kernel_digest_before: str
    runs: tuple[Facts, ...]
    grader_peak_bytes: int
    temp_left: list[str]  # what the batch left in the host's temp folder

    def facts(self, needle: str) -> Facts:
        return facts_with_source(self.runs, needle)

    def student(self, name: str) -> dict[str, Any]:
        return self.grades[name]

    def points(self, name: str) -> dict[str, float]:
        return {section: data["points"] for section, data in self.grades[name]["sections"].items()}


@pytest.fixture(scope="module")
def batch(security_env: SecurityEnv, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    root = tmp_path_factory.mktemp("hostile")
    token = uuid.uuid4().hex
    submissions = root / "submissions"
    out = root / "reports"
    listener = Listener()
    host = {
        "submissions": str(submissions),
        "sibling": str(submissions / "bad_not_json.ipynb"),
        "out": str(out),
        "cache": str(security_env.cache),
        "rubric": str(security_env.rubric),
        "repository_rubric": str(ROOT / "rubric.yaml"),
        "reference": str(REFERENCE.parent),
        "grader_source": str(ROOT / "grader" / "execution" / "run.py"),
        "repository": str(ROOT),
        "home_cache": str(Path.home() / ".cache"),
    }
    make_notebooks.materialize(
        submissions,
        {
            "PORT": listener.port,
            "HOST_ADDRESSES": host_addresses(),
            "HOST_PATHS": host,
            "MARK": token,
            "MARK_HEAD": token[:16],
            "MARK_TAIL": token[16:],
        },
    )
    # Not files at all: a named pipe (it once hung the whole run) and a link to the reference (once graded 100).
    os.mkfifo(submissions / "bad_fifo.ipynb")
    (submissions / "bad_link_to_reference.ipynb").symlink_to(REFERENCE)
    kernel_digest = tree_digest(ROOT / "grader" / "kernel")
    # A temp folder of the batch's own, to see what it leaves there; passable by all (as /tmp is), since a
    # sandbox started as nobody reaches its run through it.
    temp = Path(tempfile.mkdtemp(prefix="hostile-temp-", dir="/tmp"))
    temp.chmod(0o755)
    started = time.monotonic()
    with listener.running(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(temp))
        result, grader_peak = run_grade_measured(
            submissions, "--out", out, "--jobs", "2", *security_env.args(), cache=security_env.cache, timeout=600
        )
    seconds = time.monotonic() - started
    temp_left = sorted(path.name for path in temp.iterdir())
    if not temp_left:
        temp.rmdir()
    assert result.returncode == 0, result.stderr[-3000:]
    return Batch(
        security_env,
        submissions,
        out,
        result,
        seconds,
        grades_by_student(out),
        listener.received,
        token,
        kernel_digest,
        cached_facts(security_env.cache),
        grader_peak,
        temp_left,
    )


def test_every_submission_gets_a_grade_and_the_batch_exits_0(batch: Batch) -> None:
    notebooks = list(batch.submissions.rglob("*.ipynb"))
    assert len(batch.grades) == len(notebooks)
    assert "Graded" in batch.result.stdout
    print(f"hostile batch: {len(notebooks)} notebooks in {batch.seconds:.0f} s")


# ------------------------------------------------------------------------------------------- isolation


def test_no_network(batch: Batch) -> None:
    assert batch.received == [], "a sandboxed kernel reached a listener on the host"
    found = findings(batch.facts("HOST_ADDRESSES"), "network")
    assert found["interfaces"] == ["lo"]
    assert all(result != "connected" for result in found["connect"].values()), found["connect"]
    assert found["internet"] != "connected"
    assert found["dns"].startswith("gaierror"), found["dns"]


def test_filesystem_shows_nothing_of_the_grader_and_only_scratch_is_writable(batch: Batch) -> None:
    found = findings(batch.facts("marker_files"), "filesystem")
    visible = {name for name, seen in found["visible"].items() if seen and name != "repository"}
    assert visible == set(), f"the kernel can see {visible}"
    assert found["found"] == [], "grader inputs or outputs are visible in the sandbox"
    assert found["marker_files"] == [], "the kernel read another student's submission"
    # /root holds only the path down to the interpreter the kernel runs on, bound read-only.
    assert all(Path(sys.base_prefix).is_relative_to(Path("/root") / name) for name in found["root"] or [])
    assert "MNIST_GRADER_CACHE" not in found["env"]

    writable = {name for name, result in found["writes"].items() if result in ("written", "opened for writing")}
    # A checkout under the host's /tmp (as in CI) is, inside, a folder of the sandbox's own /tmp tmpfs that
    # holds the read-only mount of its virtual environment: a write there stays in sandbox memory, which the
    # host-side look for strays below confirms.
    private = {"repository"} if ROOT.is_relative_to("/tmp") else set()
    assert writable - private == {"home", "tmp", "run"}, found["writes"]
    # Only the size-limited scratch mounts, the run folder and the kernel's sockets: not the sandbox's own
    # root or /dev, which are memory no limit covers.
    allowed = ("/home/student", "/tmp", "/dev/shm", "/grader/run")
    unexpected = [f for f in found["writable_folders"] if not f.startswith(allowed)]
    assert unexpected == [], unexpected
    strays = [
        *batch.submissions.rglob("pwned*"),
        *batch.out.rglob("pwned*"),
        *batch.env.cache.rglob("pwned*"),
        *(p for p in (ROOT / "pwned.txt", Path("/usr/pwned.txt"), Path(sys.prefix) / "pwned.txt") if p.exists()),
    ]
    assert strays == []
    assert tree_digest(ROOT / "grader" / "kernel") == batch.kernel_digest_before


def test_identity_nobody_without_capabilities_in_its_own_pid_namespace(batch: Batch) -> None:
    found = findings(batch.facts("new_user_namespace"), "identity")
    assert (found["uid"], found["euid"], found["gid"]) == (65534, 65534, 65534)
    assert int(found["cap_eff"], 16) == 0 and int(found["cap_bnd"], 16) == 0
    assert found["no_new_privs"] == "1"
    assert found["setuid0"] != "succeeded"
    # The kernel's parent is the namespace's init (bwrap); nothing of the host is listed in /proc.
    assert found["ppid"] == 1 and found["pid"] < 10
    commands = found["processes"].values()
    assert all("bwrap" in c or "ipykernel" in c or c == "" for c in commands), commands
    assert found["new_user_namespace"] == "refused"


def test_seccomp_filter_refuses_what_a_notebook_never_needs(batch: Batch) -> None:
    found = findings(batch.facts("perf_event_open"), "seccomp")
    assert found["seccomp_mode"] == "2"  # a filter is loaded
    calls = ["ptrace", "mount", "unshare", "setns", "keyctl", "bpf", "perf_event_open", "personality"]
    assert found["calls"] == dict.fromkeys(calls, "EPERM")
    assert found["personality_query"] == "succeeded"


def test_kernel_dies_with_the_grader(batch: Batch, tmp_path: Path) -> None:
    """The grader killed outright (no cleanup runs) takes its sandbox down: kernel and a detached child."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    nb = make_notebooks.notebook(
        ['import subprocess, time\nsubprocess.Popen(["sleep", "300"], start_new_session=True)\ntime.sleep(300)']
    )
    (folder / "sleeper.ipynb").write_text(make_notebooks.nbformat.writes(nb), encoding="utf-8")
    args = ["-m", "grader", folder, "--out", tmp_path / "out", *batch.env.args()]
    env = grader_environ(batch.env.cache)
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        sandboxed: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            tree = process_tree(proc.pid)
            if any(_cmdline(pid).startswith("sleep 300") for pid in tree):
                sandboxed = [pid for pid in tree if pid != proc.pid]
                break
            time.sleep(0.2)
        assert sandboxed, "the sleeper notebook never started its child"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in sandboxed):
            time.sleep(0.1)
        assert not [pid for pid in sandboxed if _alive(pid)], "sandbox processes outlived the grader"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # A grader killed outright cannot remove its (now empty) cgroups; this test's own are removed here.
        for group in Path("/sys/fs/cgroup").glob(f"*/mnist-grader-{proc.pid}-*"):
            with suppress(OSError):
                group.rmdir()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# ------------------------------------------------------------------------------------------- limits


def test_endless_cell_is_interrupted_and_the_next_cell_runs(batch: Batch) -> None:
    student = batch.student("limit_loop")
    assert f"cell 1 stopped after {LIMITS['cell_timeout_s']:g} s (interrupted)" in student["limits_hit"]
    facts = batch.facts("after the loop")
    assert [c.status for c in facts.execution.cells] == ["timeout", "ok"]
    assert "after the loop" in facts.execution.stdout


def test_cell_ignoring_the_interrupt_gets_its_kernel_killed(batch: Batch) -> None:
    student = batch.student("limit_ignores_interrupt")
    assert any("stopped after" in hit and "killed" in hit for hit in student["limits_hit"]), student["limits_hit"]
    assert "ignored the interrupt" in student["message"]
    facts = batch.facts("never printed")
    assert [c.status for c in facts.execution.cells] == ["timeout", "not_run"]


def test_memory_hog_is_killed(batch: Batch) -> None:
    student = batch.student("limit_memory")
    assert any(hit.startswith("killed at") and "memory" in hit for hit in student["limits_hit"])
    assert "died while running cell 1" in student["message"]


def test_saved_model_that_needs_too_much_memory_stops_the_re_evaluation(batch: Batch) -> None:
    facts = batch.facts("def bloated")
    assert facts.kernel.model.saved
    assert not facts.reevaluation.ok
    assert "re-evaluation of the saved model stopped: killed at" in facts.reevaluation.message
    assert "memory" in facts.reevaluation.message


def test_fork_bomb_is_contained_by_the_process_limit(batch: Batch) -> None:
    student = batch.student("limit_fork_bomb")
    # A fork shares its parent's memory: it must be stopped as a process, not mistaken for a memory hog.
    assert not any("memory" in hit for hit in student["limits_hit"]), student["limits_hit"]
    killed = any("processes" in hit for hit in student["limits_hit"])
    if not killed:  # the cgroup refused the fork before the watchdog had to act
        found = findings(batch.facts("children, error"))
        assert "Resource temporarily unavailable" in found["error"]
        assert found["children"] < LIMITS["processes"]


def test_output_flood_is_cut(batch: Batch) -> None:
    student = batch.student("limit_output_flood")
    assert any(hit.startswith(f"output beyond {LIMITS['output_kb']} KB discarded") for hit in student["limits_hit"])
    facts = batch.facts("after the flood")
    assert len(facts.execution.stdout) <= 64 << 10
    assert [c.status for c in facts.execution.cells] == ["ok", "ok"]
    report = next((batch.out / "students").glob("limit_output_flood*.html"))
    assert report.stat().st_size < 2 << 20


def test_odd_kernel_messages_are_ignored_and_the_notebook_goes_on(batch: Batch) -> None:
    student = batch.student("limit_odd_messages")
    assert student["status"] == "graded"
    assert "malformed kernel messages ignored (cell 3)" in student["limits_hit"]
    assert batch.points("limit_odd_messages")["prepare"] == PREPARE_POINTS
    facts = batch.facts("after the odd messages")
    assert facts.execution.status == "completed"
    assert [c.status for c in facts.execution.cells] == ["ok", "ok", "ok"]
    assert "after the odd messages" in facts.execution.stdout


@pytest.mark.parametrize(
    ("name", "after"), [("limit_display_flood", "after the displays"), ("limit_huge_print", "after the print")]
)
def test_oversized_messages_are_dropped_and_the_next_cell_is_heard(batch: Batch, name: str, after: str) -> None:
    # Refused by ZeroMQ (over output_kb + 64 KB), reported as output beyond the cap.
    cut = f"output beyond {LIMITS['output_kb']} KB discarded (cell 1"
    assert any(hit.startswith(cut) for hit in batch.student(name)["limits_hit"]), batch.student(name)["limits_hit"]
    facts = batch.facts(after)
    assert facts.execution.status == "completed"
    assert [c.status for c in facts.execution.cells] == ["ok", "ok"]
    assert after in facts.execution.stdout


def test_a_message_of_many_parts_is_dropped_outside_the_grader(batch: Batch) -> None:
    # Held and dropped by the kernel's relay, in the notebook's memory; the notebook goes on.
    assert "malformed kernel messages ignored (cell 1)" in batch.student("limit_many_parts")["limits_hit"]
    facts = batch.facts("after the parts")
    assert facts.execution.status == "completed"
    assert [c.status for c in facts.execution.cells] == ["ok", "ok"]
    assert "after the parts" in facts.execution.stdout


def test_the_graders_own_memory_stays_bounded(batch: Batch) -> None:
    """400 MB of display updates, a 100 MB print and a 200 MB message of many parts, among the rest of the batch:
    the grader holds none of it."""
    peak_mb = batch.grader_peak_bytes >> 20
    print(f"grader peak RSS over the hostile batch: {peak_mb} MB")
    assert 0 < peak_mb < GRADER_PEAK_MB


def test_disk_limits(batch: Batch) -> None:
    found = findings(batch.facts("the notebook goes on"))
    assert found["one_big_file"] == f"EFBIG after {LIMITS['file_mb']} MB"
    assert any(result.startswith("ENOSPC") for result in found["many_files"])
    assert any(result.startswith("ENOSPC") for result in found["dev_shm"])
    facts = batch.facts("the notebook goes on")
    assert "the notebook goes on" in facts.execution.stdout
    student = batch.student("limit_disk")
    # The socket folder is on the host's disk too, and empty files cost it inodes: the kernel is stopped.
    assert f"killed for writing more than {LIMITS['scratch_mb']} MB" in student["limits_hit"]
    assert [c.status for c in facts.execution.cells] == ["ok", "ok", "kernel_died"]


def test_deep_folder_tree_is_measured_its_kernel_killed_and_its_folder_removed(batch: Batch) -> None:
    student = batch.student("limit_deep_tree")
    assert f"killed for writing more than {LIMITS['scratch_mb']} MB" in student["limits_hit"], student
    facts = batch.facts("a tree 1200 folders deep")
    assert [c.status for c in facts.execution.cells] == ["ok", "kernel_died"]
    assert "still running after 240 MB" not in facts.execution.stdout
    # Its run folder (1,200 levels, a FIFO, links out, a folder of mode 000) went with every other one.
    assert batch.temp_left == []


def test_millions_of_empty_files_stop_at_each_scratch_folders_cap_and_the_notebook_goes_on(batch: Batch) -> None:
    facts = batch.facts('findings = {"probe": "inodes"}')
    found = findings(facts, "inodes")
    for folder, size in {"/home/student": LIMITS["scratch_mb"] << 20, "/tmp": 64 << 20, "/dev/shm": 64 << 20}.items():
        assert found[folder]["inodes"] == inode_cap(size), folder
        assert found[folder]["error"] == "ENOSPC", found
        assert found[folder]["made"] < inode_cap(size), found
    # Refused at the caps in well under the cell's time limit; the honest cells after the flood run and earn.
    assert [c.status for c in facts.execution.cells] == ["ok"] * 4
    sections = batch.student("limit_inodes")["sections"]
    honest = ("prepare", "build")  # the notebook shows no figure and trains nothing
    assert {s: sections[s]["points"] for s in honest} == {s: sections[s]["max"] for s in honest}


# ------------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("name", sorted(make_notebooks.FAULTS))
def test_crashing_kernel_keeps_the_points_earned_before(batch: Batch, name: str) -> None:
    student = batch.student(name)
    assert "the kernel died while running cell 3" in student["message"]
    assert batch.points(name)["prepare"] == PREPARE_POINTS
    facts = batch.facts(make_notebooks.FAULTS[name])
    assert facts.execution.status == "kernel_died"
    assert [c.status for c in facts.execution.cells] == ["ok", "ok", "kernel_died", "not_run"]


def test_sys_exit_is_an_error_in_its_cell_only(batch: Batch) -> None:
    facts = batch.facts("after sys.exit")
    assert facts.execution.status == "completed"
    assert facts.execution.cells[2].status == "error" and facts.execution.cells[2].error_name == "SystemExit"
    assert "after sys.exit" in facts.execution.stdout and "after exit" in facts.execution.stdout
    assert batch.points("fault_sys_exit")["prepare"] == PREPARE_POINTS


def test_kernel_that_hijacks_the_graders_calls_is_killed(batch: Batch) -> None:
    student = batch.student("fault_hangs_probe")
    assert any("did not answer the grader" in hit for hit in student["limits_hit"]), student["limits_hit"]
    facts = batch.facts("swallow_grader_calls")
    assert facts.execution.status == "kernel_died"
    assert facts.execution.duration_s < 3 * LIMITS["cell_timeout_s"] + LIMITS["startup_timeout_s"]


def test_facts_file_replaced_by_a_fifo_does_not_hang_the_grader(batch: Batch) -> None:
    # Reaching this test at all means the batch finished; the run's kernel facts are simply empty.
    facts = batch.facts("os.mkfifo")
    assert facts.execution.status == "completed"
    assert not facts.kernel.model.present and not facts.kernel.variable("score").present


@pytest.mark.parametrize("name", ["fault_deep_facts", "fault_huge_integer_facts"])
def test_a_facts_file_the_decoder_refuses_costs_that_notebook_its_facts_only(batch: Batch, name: str) -> None:
    student = batch.student(name)
    assert student["status"] == "graded" and student["total"] == 0
    facts = batch.facts('"[" * 100_000' if name == "fault_deep_facts" else '"9" * 400')
    assert facts.execution.status == "completed" and facts.kernel == KernelFacts.empty(facts.kernel.request)
    assert (batch.out / "students" / f"{name}.html").is_file()


def test_a_history_no_chart_can_scale_still_gets_its_report(batch: Batch) -> None:
    facts = batch.facts("1.7e308")
    assert facts.kernel.history is not None and facts.kernel.history.values["loss"][0] == 1.7e308
    html = (batch.out / "students" / "fault_huge_history.html").read_text("utf-8")
    assert 'alt="Loss and accuracy per epoch' in html and "Report unavailable" not in html


# ------------------------------------------------------------------------------------------- spoofing


def _integrity(batch: Batch, name: str, section_title: str) -> list[str]:
    return [flag for flag in batch.student(name)["integrity"] if flag.startswith(section_title)]


def test_typed_in_score_earns_no_evaluate_points(batch: Batch) -> None:
    points = batch.points("spoof_score")
    assert points["evaluate"] == 0
    assert any("typed in" in flag for flag in _integrity(batch, "spoof_score", "Evaluate"))
    assert points["train"] == 20  # the rest of the notebook is honest and keeps its points


def test_monkeypatched_evaluate_earns_no_evaluate_points(batch: Batch) -> None:
    assert batch.points("spoof_evaluate")["evaluate"] == 0
    assert any("`evaluate` was replaced" in flag for flag in _integrity(batch, "spoof_evaluate", "Evaluate"))


def test_monkeypatched_fit_earns_no_train_points(batch: Batch) -> None:
    assert batch.points("spoof_fit")["train"] == 0
    assert any("`fit` was replaced" in flag for flag in _integrity(batch, "spoof_fit", "Train"))


def test_history_without_fit_earns_no_train_points(batch: Batch) -> None:
    assert batch.points("spoof_history")["train"] == 0
    assert any("no call to fit produced it" in flag for flag in _integrity(batch, "spoof_history", "Train"))


def test_replacing_print_np_load_and_the_probe_earns_nothing(batch: Batch) -> None:
    points = batch.points("spoof_probe")
    checks = {
        f"{section}.{check['id']}": check["points"]
        for section, data in batch.student("spoof_probe")["sections"].items()
        for check in data["checks"]
    }
    earned = {name: p for name, p in checks.items() if p}
    assert earned == {}, points


def test_forged_facts_do_not_survive_the_re_evaluation(batch: Batch) -> None:
    """A student who reads the probe can hand it any facts; what the fresh process measures still holds."""
    points = batch.points("forge_facts")
    assert points["train"] == 0 and points["evaluate"] == 0
    flags = batch.student("forge_facts")["integrity"]
    assert any("never took a step" in flag for flag in flags)
    assert any("re-evaluating the saved model gives" in flag for flag in flags)


def _check(batch: Batch, name: str, check_id: str) -> dict[str, Any]:
    return next(c for data in batch.student(name)["sections"].values() for c in data["checks"] if c["id"] == check_id)


def test_metric_renamed_as_the_expected_one_earns_nothing(batch: Batch) -> None:
    """A top-k accuracy (k=10) named "categorical_accuracy" reports 1.0 for any model."""
    points = batch.points("forge_metric_name")
    assert points["train"] == 0 and points["evaluate"] == 0
    assert any("top_k_categorical_accuracy(k=10)" in flag for flag in _integrity(batch, "forge_metric_name", "Train"))
    assert any("1.0000" in flag for flag in _integrity(batch, "forge_metric_name", "Evaluate"))
    # The test accuracy is the grader's own count from the saved model's predictions, not the metric's 1.0.
    measured = _check(batch, "forge_metric_name", "accuracy")["message"]
    assert "Test accuracy 0." in measured and "1.0000" not in measured


def test_fit_that_writes_the_probes_own_records_earns_no_train_points(batch: Batch) -> None:
    """No training at all, with the probe's record, hooks, returned History and step counter all forged:
    the history's last validation results are not what the saved model scores on that split."""
    assert batch.points("forge_fit_state")["train"] == 0
    flags = _integrity(batch, "forge_fit_state", "Train")
    assert any("does not match the saved model on the validation split" in flag for flag in flags), flags


def test_weights_set_after_a_fit_on_ten_images_earn_no_train_points(batch: Batch) -> None:
    assert batch.points("forge_set_weights")["train"] == 0
    flags = _integrity(batch, "forge_set_weights", "Train")
    assert any("fit was given 10 sample(s)" in flag for flag in flags), flags
    assert any("weights are not the ones the last training fit ended with" in flag for flag in flags), flags


def test_fit_on_the_test_set_earns_no_train_points(batch: Batch) -> None:
    assert batch.points("forge_fit_on_test")["train"] == 0
    assert any("test images (x_test)" in flag for flag in _integrity(batch, "forge_fit_on_test", "Train"))


# ------------------------------------------------------------------------------------------- report safety


def test_reports_contain_no_live_payload(batch: Batch) -> None:
    pages = [batch.out / "index.html", *(batch.out / "students").glob("*.html")]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for payload in (make_notebooks.XSS_SCRIPT, make_notebooks.XSS_IMG, "<img src=x", "onerror=alert(1)>"):
            assert payload not in html, f"{page.name} contains {payload!r}"
    student = next(p for p in (batch.out / "students").glob("*.html") if "onerror" in p.name)
    html = student.read_text(encoding="utf-8")
    # Not vacuous: the payloads are in the page, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert make_notebooks.XSS_IMG in batch.grades  # the file name is the student id, unchanged in grades.json


# ------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("bad_not_json", "error", "not valid JSON"),
        ("bad_not_a_notebook", "error", "not a Jupyter notebook"),
        ("bad_empty_file", "error", "0 bytes"),
        ("bad_no_cells", "error", "no code"),
        ("bad_r_kernel", "error", "'R'"),
        ("bad_fifo", "error", "is a named pipe (FIFO), not a regular file"),
        ("bad_link_to_reference", "error", "is a symbolic link, not a regular file"),
    ],
)
def test_bad_inputs_get_a_clear_status(batch: Batch, name: str, status: str, message: str) -> None:
    student = batch.student(name)
    assert student["status"] == status and message in student["message"], student
    assert student["total"] == 0


def test_old_nbformat_is_converted_and_run(batch: Batch) -> None:
    assert batch.student("bad_nbformat_v3")["status"] == "graded"
    assert "hello from nbformat 3" in batch.facts("hello from nbformat 3").execution.stdout


def test_unusual_names_and_duplicate_ids(batch: Batch) -> None:
    assert batch.student("José Núñez")["status"] == "graded"
    assert "plain notebook" in batch.facts("plain notebook").execution.stdout
    for name in ("dup", "dup (2)"):  # both kept, each saying so, each with its own file's problem
        assert "Duplicate student id 'dup'" in batch.student(name)["message"]
        assert "not valid JSON" in batch.student(name)["message"]


# ------------------------------------------------------------------------------------------- no bwrap


def test_refuses_to_run_unsandboxed_without_bwrap(security_env: SecurityEnv, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "plain.ipynb").write_text(
        make_notebooks.nbformat.writes(make_notebooks.notebook(make_notebooks.PLAIN)), encoding="utf-8"
    )
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run_grade(folder, "--out", tmp_path / "out", *security_env.args(), cache=security_env.cache, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bubblewrap" in lines[0] and "--no-sandbox" in lines[0]
    assert not (tmp_path / "out").exists()


def test_committed_notebooks_match_the_generator(tmp_path: Path) -> None:
    make_notebooks.write_all(tmp_path)
    expected = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.ipynb")}
    committed = {p.relative_to(make_notebooks.FOLDER): p.read_bytes() for p in make_notebooks.FOLDER.rglob("*.ipynb")}
    assert committed == expected, "run `python tests/security/make_notebooks.py`"
