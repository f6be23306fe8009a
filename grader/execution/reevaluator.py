"""The saved model re-evaluated by the grader in a fresh sandboxed process, started beside the kernel once it trains."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile

from msgspec import to_builtins

from grader.execution.settings import RunSettings
from grader.facts import FitCall, KernelFacts, ValidationRequest
from grader.kernel import run_files
from grader.reevaluation_facts import Reevaluation
from grader.sandbox.bwrap import wrap_command
from grader.sandbox.cgroup import ResourceGroup
from grader.sandbox.limits import memory_text
from grader.sandbox.placement import KERNEL_PACKAGE, Placement, kernel_environment
from grader.sandbox.watchdog import Watchdog
from grader.strictjson import DecodeError, decode

_MAX_REEVALUATION_BYTES = 1 << 20
_REEVALUATE_TIMEOUT_S = 180.0


def no_model(kernel: KernelFacts) -> Reevaluation:
    """What stands for the re-evaluation when the kernel saved no model."""
    if not kernel.model.present:
        return Reevaluation(ok=False, message="no Keras model was trained or left in the notebook")
    return Reevaluation(ok=False, message="the model could not be saved for re-evaluation (was it built?)")


class Reevaluator:
    """The grader's own evaluation of the saved model, in a fresh sandboxed process.

    The process is launched once the notebook trains (the probe leaves `run_files.TRAINING_STARTED` after that
    cell) and, while the rest of the notebook runs, imports Keras, loads the dataset and warms TensorFlow up; then
    it waits for a line on stdin, which `start` sends the moment the kernel has saved the model and been killed,
    and later for the validation split to rebuild, which `result` sends once the kernel's facts are read. This
    keeps the re-evaluation's start-up off the critical path of a notebook's grading time, and a notebook that
    never trains costs no second process; a model saved without a fit launches it in `result`.
    """

    def __init__(self, placement: Placement, settings: RunSettings) -> None:
        self.placement = placement
        self.settings = settings
        self.group = ResourceGroup(settings.limits)
        self.proc: subprocess.Popen[bytes] | None = None
        self.watchdog: Watchdog | None = None
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the process, closed in close()
        self.started = False

    def after_cell(self) -> None:
        """Launches the process once the notebook has trained (the kernel may fake the sign: an early launch)."""
        if self.proc is None and os.path.lexists(self.placement.run_dir / run_files.TRAINING_STARTED):
            self._launch()

    def _launch(self) -> subprocess.Popen[bytes]:
        placement, limits = self.placement, self.settings.limits
        argv = [placement.python_path, "-m", f"{KERNEL_PACKAGE}.reevaluate", placement.run_path, placement.data_path]
        env = kernel_environment(self.settings.threads, placement)
        cmd = self.group.enter_prefix() + wrap_command(argv, placement, limits, env, writable_run=False)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        # The saved model's config is the student's: it can ask for any amount of memory when it is built.
        # The cgroup caps that where one exists; the watchdog everywhere.
        self.watchdog = Watchdog(limits, (), self.proc.kill)
        self.watchdog.start(self.proc.pid)
        return self.proc

    def start(self) -> None:
        """Says "go", if the process runs: the kernel has saved the model and is gone. `result` says it too."""
        if self.started or self.proc is None:
            return
        self.started = True
        with contextlib.suppress(OSError):  # it died already: `result` reports what it left
            self.proc.stdin.write(b"go\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]

    def result(self, fit: FitCall | None) -> Reevaluation:
        """The re-evaluation's answer, once it is told how `fit` (the training fit) prepared its data: the
        validation split to rebuild, and whether the pixels were divided by 255 (also when no fit is known)."""
        proc = self.proc or self._launch()
        self.start()
        request = {
            "validation": to_builtins(ValidationRequest.of(fit)),
            "x_scaled": fit is None or fit.x.images != "train_raw",
        }
        message = json.dumps(request).encode() + b"\n"
        try:
            out, _ = proc.communicate(message, timeout=_REEVALUATE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Reevaluation(ok=False, message=f"re-evaluation took longer than {_REEVALUATE_TIMEOUT_S:g} s")
        stopped = self.watchdog.reason if self.watchdog is not None else None
        if stopped is None and self.group.memory_killed():
            stopped = f"killed at {memory_text(self.settings.limits.memory_mb)} of memory"
        if stopped:
            return Reevaluation(ok=False, message=f"re-evaluation of the saved model stopped: {stopped}")
        lines = out.strip().splitlines()
        try:
            return decode(lines[-1], Reevaluation, max_bytes=_MAX_REEVALUATION_BYTES)
        except (IndexError, DecodeError):
            self.stderr.seek(0)
            tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            return Reevaluation(ok=False, message=f"re-evaluation failed: {tail[0][:300]}")

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
        self.stderr.close()
        self.group.release()
