"""The library of check kinds, grouped by what they look at: data, figures, model (and other models built
from it), training, evaluation.

Importing this package registers every built-in kind; `docs/rubric.md` documents each with its parameters.
"""

from grader.checks import (
    compile_settings,
    data,
    evaluation,
    figures,
    model,
    other_models,
    training,
    training_integrity,
)
from grader.checks.base import (
    INTEGRITY,
    KINDS,
    REVIEW,
    CheckKind,
    Context,
    Integrity,
    Params,
    Verdict,
    check_kind,
    clean,
    fail,
    integrity_kind,
    ok,
    review_kind,
)

__all__ = [
    "INTEGRITY",
    "KINDS",
    "REVIEW",
    "CheckKind",
    "Context",
    "Integrity",
    "Params",
    "Verdict",
    "check_kind",
    "clean",
    "compile_settings",
    "data",
    "evaluation",
    "fail",
    "figures",
    "integrity_kind",
    "model",
    "ok",
    "other_models",
    "review_kind",
    "training",
    "training_integrity",
]
