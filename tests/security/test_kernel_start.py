"""A kernel that never starts: the run ends within its start-up limit and says so, whatever the interpreter did.

A notebook cannot stop its own kernel from starting, so the interpreter itself is replaced here: one that
exits at once, and one that hangs without ever answering. Both run inside the real sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.dataset import provision_dataset
from grader.execution.run import grade_run
from grader.execution.settings import RunLimits, RunSettings, dataset_facts
from grader.facts import ProbeRequest
from grader.kernel_env import KernelEnvironment
from grader.sandbox.host import bwrap_path
from tests.security import make_notebooks
from tests.security.conftest import SecurityEnv

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not installed"),
]

STARTUP_S = 5.0


@pytest.mark.parametrize(
    ("behaviour", "script"),
    [("exits at once", "exit 3"), ("never answers", "exec sleep 600")],
)
def test_kernel_that_never_starts(security_env: SecurityEnv, tmp_path: Path, behaviour: str, script: str) -> None:
    # The sandbox binds the interpreter's folder (bin/..), so the fake one is visible inside.
    fake_env = KernelEnvironment((), "fake", tmp_path / "interpreter")
    fake = fake_env.python
    fake.parent.mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    notebook = tmp_path / "plain.ipynb"
    notebook.write_text(make_notebooks.nbformat.writes(make_notebooks.notebook(make_notebooks.PLAIN)))
    dataset = provision_dataset(security_env.dataset, security_env.cache)
    request = ProbeRequest(loader="mnist", variables=["model"])
    limits = RunLimits(startup_timeout_s=STARTUP_S)
    data = dataset_facts(dataset)
    settings = RunSettings(limits, True, threads=1, request=request, environment=fake_env, dataset=data)

    facts = grade_run(notebook, dataset, settings)

    assert facts.execution.status == "failed_to_start", facts.execution
    assert facts.execution.message.startswith("the kernel did not start")
    assert [c.status for c in facts.execution.cells] == ["not_run"]
