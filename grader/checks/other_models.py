"""Checks of another model the notebook built from the trained one (a probability model, a feature extractor):
that it wraps the trained model itself, and that the notebook called it on the test images. Both are decided
from the recorded objects and calls, never from the notebook's text."""

from __future__ import annotations

from pydantic import Field

from grader.assignment import Assignment, Identifier
from grader.checks.base import Context, Params, Verdict, check_kind, fail, missing, ok
from grader.facts import Facts, OtherModelFacts


def other_model(facts: Facts, assignment: Assignment, role: str) -> OtherModelFacts | Verdict:
    """The model the notebook holds under `role`'s name, or the failure saying why there is none."""
    name = assignment.name(role)
    variable = facts.kernel.variable(name)
    if not variable.present:
        return missing(facts, f"No `{name}` variable was defined", name)
    if variable.model is None:
        return fail(f"`{name}` is a {variable.type_name or 'value'}, not a Keras model.")
    return variable.model


def named_role(role: str, assignment: Assignment) -> str | None:
    """Why `role` cannot be checked as another model: it must be a key of the rubric's `variables:`."""
    if role not in assignment.variables:
        return f"`{role}` is not a key of `variables:`: give the notebook's name for that model there"
    return None


class OtherModel(Params):
    model: Identifier  # the model's role: a key of `variables:`, whose value is the notebook's name for it

    def check_assignment(self, assignment: Assignment) -> str | None:
        return named_role(self.model, assignment)


@check_kind("model.wraps_trained", OtherModel)
def wraps_trained(facts: Facts, params: OtherModel, ctx: Context) -> Verdict:
    """The named model holds the trained model itself as one of its layers (built on it, not on a copy)."""
    found, name = other_model(facts, ctx.assignment, params.model), ctx.assignment.name(params.model)
    if isinstance(found, Verdict):
        return found
    if found.wraps_trained:
        return ok(f"`{name}` is built on the trained model.")
    if found.is_trained:
        return fail(f"`{name}` is the trained model itself, not a new model with the trained model as a layer.")
    return fail(
        f"`{name}` does not hold the trained model as a layer: build it on the trained model itself, "
        "not on a copy or on new layers."
    )


class CalledOnTest(OtherModel):
    samples: int = Field(1, ge=1)  # how many test images one call must have been given, at least


@check_kind("model.called_on_test", CalledOnTest)
def called_on_test(facts: Facts, params: CalledOnTest, ctx: Context) -> Verdict:
    """The notebook called the named model (`m(x)` or `m.predict(x)`) on at least `samples` test images."""
    found, name = other_model(facts, ctx.assignment, params.model), ctx.assignment.name(params.model)
    if isinstance(found, Verdict):
        return found
    test = ctx.assignment.name("test_images")
    most = max((call.test_images for call in found.calls), default=0)
    if most >= params.samples:
        return ok(f"`{name}` was called on {most} test image(s).")
    if not found.calls:
        return missing(facts, f"`{name}` was never called on data: call it on {test}[:{params.samples}]", name)
    last = found.calls[-1]
    return fail(
        f"`{name}` was called on {last.n_samples} sample(s), {most or 'none'} of them test images; "
        f"call it on {test}[:{params.samples}]."
    )
