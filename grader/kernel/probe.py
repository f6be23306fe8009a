"""Recording hooks and fact collection: the grader code that runs inside the student's kernel.

The grader runs `install` before the first student cell, `begin_cell`/`end_cell` around each cell and
`finish` at the end. Every `end_cell` rewrites `facts.json` in the output directory, so a kernel that dies
later loses only what came after. Only plain JSON leaves this module; the grader decodes it strictly and
cross-checks what decides points against objects it inspects itself (the saved model, re-evaluated in a
fresh process). References to everything this module relies on are captured at `install`, before any
student code runs, so a student who replaces `np.save`, `json.dump` or `print` changes nothing here.

The facts are observations, not verdicts: the names the rubric asks about (`request["variables"]`), every
array holding a provisioned split's samples whatever its name, the model the notebook trained, and each call
to compile, fit and evaluate with its plain arguments and where its data came from. Scoring happens outside.

The recording is spread over this package's modules: `state`, `hooks`, `training`, `arrays`, `rows`, `figures`,
`model_facts`, `keras_identity` and `plain`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from typing import Any

import keras
import numpy as np

from . import run_files, state
from .arrays import array_facts, namespace_arrays, test_arrays
from .figures import hook_figures
from .hooks import (
    TRACKED_METHODS,
    hook_model_calls,
    loader_modules,
    patch_load_data,
    provisioned_data,
    wrap_model_methods,
)
from .model_facts import history_facts, model_facts, trained_model, with_models
from .plain import MAX_TEXT, NOT_PLAIN, floats, guarded, plain
from .state import State, current, names_of, namespace, public
from .training import hook_variables

_SEED = 0


def install(request: str, dataset_path: str, out_dir: str) -> None:
    """Provisions the data and puts the recording hooks in place; `request` is the grader's ProbeRequest as JSON."""
    state.begin(State(_parse_request(request), dataset_path, out_dir))
    # Every kernel starts from the same random state (Python, NumPy, the backend): a notebook that does not seed
    # itself draws the same indices and initial weights in every run, so re-running a class (or its reference,
    # which calibrates the accuracy threshold) gives the same grades. A notebook's own seed still wins.
    keras.utils.set_random_seed(_SEED)
    patch_load_data()
    hook_variables()
    wrap_model_methods()
    hook_model_calls()
    hook_figures()
    _write(_collect())


def _parse_request(text: str) -> dict[str, Any]:
    data = json.loads(text)
    loader, variables = data["loader"], data["variables"]
    if not isinstance(loader, str) or not loader.isidentifier():
        raise ValueError(f"the dataset loader must be a module name, not {loader!r}")
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise ValueError("the variables to record must be a list of names")
    return {"loader": loader, "variables": variables}


def _variable_facts(value: Any) -> dict[str, Any]:
    """`grader.facts.VariableFacts` of a value the notebook left under a requested name."""
    found = guarded(lambda: plain(value), NOT_PLAIN)
    return {
        "present": True,
        "type_name": type(value).__name__[:100],
        "repr": guarded(lambda: str(current().repr(value))[:MAX_TEXT], "<unprintable>"),
        "value": None if found is NOT_PLAIN else found,
        "array": guarded(lambda: array_facts(value), None),
        "from_evaluate": guarded(lambda: _from_evaluate(value), False),
    }


def _from_evaluate(value: Any) -> bool:
    """Whether the value's numbers are what a recorded evaluate returned: all of them (`score`), or one of them
    (`loss, acc = model.evaluate(...)`)."""
    numbers = floats(value)
    if numbers is None:
        return False
    for call in current().evaluate_calls:
        result = call["result"]
        if result is None:
            continue
        if len(result) == len(numbers) and all(abs(a - b) <= 1e-9 for a, b in zip(result, numbers, strict=True)):
            return True
        if len(numbers) == 1 and any(abs(a - numbers[0]) <= 1e-9 for a in result):
            return True
    return False


def _integrity(model: Any) -> dict[str, Any]:
    st = current()
    owner = type(model) if isinstance(model, st.model_cls) else st.model_cls
    intact = {name: getattr(owner, name, None) is st.hooks[name] for name in TRACKED_METHODS}
    from matplotlib.backend_bases import FigureCanvasBase

    intact["print_figure"] = FigureCanvasBase.print_figure is st.hooks["print_figure"]
    intact["load_data"] = all(getattr(m, "load_data", provisioned_data) is provisioned_data for m in loader_modules())
    intact["variable"] = vars(st.owners["variable"]).get("__init__") is st.hooks["variable"]
    overrides = []
    if model is not None:
        overrides = [n for n in (*TRACKED_METHODS, "predict") if n in getattr(model, "__dict__", {})]
    return {"hooks_intact": intact, "instance_overrides": overrides}


def _collect() -> dict[str, Any]:
    st = current()
    ns = namespace()
    items = public(ns)
    model, found_by = guarded(lambda: trained_model(items), (None, ""))
    arrays = guarded(lambda: namespace_arrays(items), [])
    variables = {
        name: guarded(functools.partial(_variable_facts, ns[name]), {"present": True})
        if name in ns
        else {"present": False}
        for name in st.request["variables"]
    }
    guarded(lambda: with_models(variables, ns, model), None)
    return {
        "request": st.request,
        "variables": variables,
        "arrays": [{"names": names_of(value, items), "facts": facts} for value, facts in arrays],
        "figures": list(st.figures.values())[-20:],
        "model": guarded(lambda: model_facts(model, found_by, items), {"present": model is not None}),
        "summary_calls": st.summary_calls,
        "compile_calls": st.compile_calls[-20:],
        "fit_calls": [{**call, "of_model": st.fit_models.get(id(call), model) is model} for call in st.fit_calls[-20:]],
        "evaluate_calls": st.evaluate_calls[-20:],
        "history": guarded(lambda: history_facts(items, model), None),
        "integrity": guarded(lambda: _integrity(model), {"hooks_intact": {}, "instance_overrides": []}),
    }


def _write(facts: dict[str, Any]) -> None:
    st = current()
    path = os.path.join(st.out_dir, run_files.FACTS)
    tmp = path + ".tmp"
    with st.open(tmp, "w", encoding="utf-8") as fh:
        fh.write(st.json_dumps(facts))
    st.os_replace(tmp, path)


def begin_cell(index: int) -> None:
    """Called before student cell `index`; re-patches data loaders that a new import brought in."""
    current().cell = index
    patch_load_data()


def end_cell(index: int) -> None:
    """Called after student cell `index`: collects facts and writes them, replacing the previous ones; after the
    first cell that trained, says so (`run_files.TRAINING_STARTED`)."""
    st = current()
    _write(_collect())
    if st.fit_calls and not st.training_announced:
        with st.open(os.path.join(st.out_dir, run_files.TRAINING_STARTED), "w"):
            st.training_announced = True


def finish() -> None:
    """Final collection; saves the trained model (as `trained_model` finds it) and the student's test arrays
    (as `test_arrays` picks them) for the grader's re-evaluation."""
    st = current()
    items = public(namespace())
    facts = _collect()
    model, _ = guarded(lambda: trained_model(items), (None, ""))
    if isinstance(model, st.model_cls) and model.built:
        try:
            st.save_model(model, os.path.join(st.out_dir, run_files.MODEL))
            facts["model"]["saved"] = True
        except Exception:
            facts["model"]["saved"] = False
        test = guarded(lambda: test_arrays(namespace_arrays(items)), None)
        if test is not None:
            with contextlib.suppress(Exception):
                path = os.path.join(st.out_dir, run_files.STUDENT_TEST)
                st.np_savez(path, x=np.asarray(test[0]), y=np.asarray(test[1]))
    _write(facts)
