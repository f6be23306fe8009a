"""Facts recorded for a probe request, with the dataset and run settings they were recorded under: for the tests
that fake runs (the facts cache, the executors, the pipeline) instead of starting a kernel."""

from __future__ import annotations

from pathlib import Path

from msgspec.structs import replace

from grader.dataset import Dataset
from grader.execution.settings import RunLimits, RunSettings
from grader.facts import DatasetFacts, ExecutionFacts, Facts, KernelFacts, ProbeRequest
from grader.kernel_env import KernelEnvironment
from grader.reevaluation_facts import Reevaluation

ROLES = ["model", "score", "x_test", "x_train", "y_test", "y_train"]


WANTED = ProbeRequest(loader="mnist", variables=sorted([*ROLES, "foo"]))


DATASET = Dataset(Path("mnist.npz"), "a" * 64, "option", True, 60_000, 10_000)


DATA = DatasetFacts(
    n_train=60_000,
    n_test=10_000,
    image_shape=[28, 28],
    classes=10,
    standin=True,
    description="test data",
    sha256="a" * 64,
    first_labels=[5, 0, 4],
)


ENVIRONMENT = KernelEnvironment((), "f" * 20, Path("env"))


SETTINGS = RunSettings(
    limits=RunLimits(), isolated=False, threads=1, request=WANTED, environment=ENVIRONMENT, dataset=DATA
)


def facts(variables: list[str], *, loader: str = "mnist", status: str = "completed", run: int = 0) -> Facts:
    """Facts recorded for a request of `variables`; `run` tells one run of a notebook from another."""
    kernel = replace(KernelFacts.empty(ProbeRequest(loader, sorted(variables))), summary_calls=run)
    execution = ExecutionFacts(status=status, message="", cells=[], stdout="", limits_hit=[], duration_s=1.0)
    return Facts(execution, kernel, Reevaluation(ok=False, message="not run"), DATA)


NEW = facts(WANTED.variables, run=2)  # what a run with the rubric's request records
