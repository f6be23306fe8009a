"""Prepare the data: shapes, float pixels scaled to [0, 1], one-hot labels, and the printed lines."""

from __future__ import annotations

from grader.checks import Check, Context, Verdict, cell_trouble, fail, ok, shape_text
from grader.facts import ArrayFacts, Facts


def _x_problem(name: str, arr: ArrayFacts, n: int) -> str | None:
    if not arr.present:
        return f"`{name}` is not defined"
    expected = [n, 28, 28, 1]
    if arr.shape != expected:
        hint = " (add the channel axis with np.expand_dims(x, -1))" if arr.shape == [n, 28, 28] else ""
        return f"`{name}` has shape {shape_text(arr.shape)}, expected {shape_text(expected)}{hint}"
    return None


def x_shape(facts: Facts, ctx: Context) -> Verdict:
    k, d = facts.kernel, facts.dataset
    problems = [p for p in (_x_problem("x_train", k.x_train, d.n_train), _x_problem("x_test", k.x_test, d.n_test)) if p]
    if problems:
        return fail("; ".join(problems) + "." + cell_trouble(facts, "load_data", "expand_dims", "reshape"))
    return ok(f"x_train {shape_text(k.x_train.shape)} and x_test {shape_text(k.x_test.shape)}.")


def x_float(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    bad = [
        f"`{n}` is {a.dtype or a.type_name}"
        for n, a in (("x_train", k.x_train), ("x_test", k.x_test))
        if not a.present or not a.dtype.startswith("float")
    ]
    if bad:
        return fail(
            "; ".join(bad)
            + ': pixels must be floating point (e.g. x.astype("float32") / 255).'
            + cell_trouble(facts, "load_data")
        )
    return ok(f"Floating-point pixels ({k.x_train.dtype}).")


def x_scaled(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    for name, arr in (("x_train", k.x_train), ("x_test", k.x_test)):
        if not arr.present:
            return fail(f"`{name}` is not defined." + cell_trouble(facts, "load_data"))
        if arr.matches_scaled:
            continue
        if arr.matches_raw:
            return fail(f"`{name}` still holds the raw 0-255 pixel values (max {arr.max:g}): divide by 255.")
        rng = f"values from {arr.min:g} to {arr.max:g}" if arr.min is not None else "no numeric values"
        return fail(f"`{name}` is not the provisioned images divided by 255 ({rng}, shape {shape_text(arr.shape)}).")
    return ok("Pixels are the original images divided by 255, in [0, 1].")


def y_onehot(facts: Facts, ctx: Context) -> Verdict:
    k = facts.kernel
    for name, arr, n in (("y_train", k.y_train, facts.dataset.n_train), ("y_test", k.y_test, facts.dataset.n_test)):
        if not arr.present:
            return fail(f"`{name}` is not defined." + cell_trouble(facts, "to_categorical", "load_data"))
        if arr.shape != [n, 10]:
            hint = " These are still integer labels: use keras.utils.to_categorical(y, 10)." if arr.shape == [n] else ""
            return fail(f"`{name}` has shape {shape_text(arr.shape)}, expected ({n}, 10).{hint}")
        if not arr.onehot:
            return fail(f"`{name}` has shape ({n}, 10) but its rows are not one-hot vectors.")
        if not arr.labels_match:
            return fail(f"`{name}` is one-hot, but its argmax does not equal the true labels (were they shuffled?).")
    return ok("Labels are one-hot (N, 10) and match the true digits.")


def printed(facts: Facts, ctx: Context) -> Verdict:
    out = facts.execution.stdout
    k = facts.kernel
    if not k.x_train.shape:
        undefined = "`x_train` is not defined, so its printed shape cannot be checked."
        return fail(undefined + cell_trouble(facts, "load_data"))
    wanted = [("the shape of x_train", shape_text(k.x_train.shape))]
    labels = facts.dataset.first_labels
    wanted.append(("the first 10 integer labels", "[" + " ".join(str(v) for v in labels) + "]"))
    missing = [what for what, text in wanted if text not in out]
    if missing:
        return fail("The output does not show " + " and ".join(missing) + " (print them as the assignment asks).")
    return ok("Printed the shape and the first labels.")


CHECKS: dict[str, Check] = {
    "x_shape": x_shape,
    "x_float": x_float,
    "x_scaled": x_scaled,
    "y_onehot": y_onehot,
    "printed": printed,
}
