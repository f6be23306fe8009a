"""What one run needs besides its notebook: limits, the sandbox's switches, the probe's request, the dataset's facts."""

from __future__ import annotations

from dataclasses import dataclass

from grader.dataset import Dataset
from grader.facts import FIRST_LABELS, DatasetFacts, ExecutionFacts, Facts, KernelFacts, ProbeRequest
from grader.kernel.labels import class_count
from grader.kernel_env import KernelEnvironment
from grader.reevaluation_facts import Reevaluation
from grader.sandbox.limits import Limits
from grader.statuses import RunStatus


@dataclass(frozen=True, slots=True)
class RunLimits(Limits):
    """The sandbox's limits and the size of a notebook the grader reads at all; set in rubric.yaml under `limits`."""

    # A notebook is parsed in the grader's own process: above this it is refused unread (status `error`).
    notebook_mb: int = 32

    @property
    def notebook_bytes(self) -> int:
        return self.notebook_mb << 20


@dataclass(frozen=True, slots=True)
class RunSettings:
    limits: RunLimits
    isolated: bool
    threads: int
    # What the probe records (the rubric's `probe_request()`). Not part of the facts cache key: the facts
    # record it, and a run whose request lacks what the rubric asks for is executed again.
    request: ProbeRequest
    environment: KernelEnvironment  # the Python the kernel and the re-evaluation run on
    dataset: DatasetFacts  # computed once for the batch (`dataset_facts`); the cache key has the dataset's digest


def dataset_facts(dataset: Dataset) -> DatasetFacts:
    import numpy as np

    with np.load(dataset.path) as data:
        y_train = data["y_train"]
        image_shape = data["x_test"].shape[1:]  # the smaller split to decompress; both have the same images
    return DatasetFacts(
        n_train=dataset.n_train,
        n_test=dataset.n_test,
        image_shape=[int(n) for n in image_shape],
        classes=class_count(y_train),
        standin=dataset.standin,
        description=dataset.describe(),
        sha256=dataset.sha256,
        first_labels=[int(v) for v in y_train[:FIRST_LABELS]],
    )


def not_run_facts(status: RunStatus, message: str, settings: RunSettings) -> Facts:
    """The facts of a notebook that was never run (`unreadable`, or `grader_error`), saying why."""
    execution = ExecutionFacts(status=status, message=message, cells=[], stdout="", limits_hit=[], duration_s=0.0)
    not_run = Reevaluation(ok=False, message="not run")
    return Facts(execution, KernelFacts.empty(settings.request), not_run, settings.dataset)
