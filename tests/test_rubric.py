"""Loading a rubric: every mistake in it is one line naming the file, the line and the key, with the closest
valid name; an instructor's own check kinds load from the file the rubric names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grader.checks import INTEGRITY, KINDS
from grader.rubric import RubricError, load_rubric
from grader.score import score_facts
from tests.factories import CONTEXT, ROOT, make_facts

RUBRIC = (ROOT / "rubric.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "rubric.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    return text[: text.index(marker)].count("\n") + 1


def edit(*replacements: str) -> Callable[[str], str]:
    """Replaces the first `old` by `new` for each (old, new) pair."""

    def change(text: str) -> str:
        for old, new in zip(replacements[::2], replacements[1::2], strict=True):
            assert old in text, old
            text = text.replace(old, new, 1)
        return text

    return change


@pytest.mark.parametrize(
    ("change", "marker", "key", "words"),
    [
        (  # unknown check kind
            edit("kind: data.images_shape", "kind: data.image_shape"),
            "x_shape:",
            "sections.prepare.checks.x_shape.kind",
            ["unknown check kind 'data.image_shape'", "did you mean 'data.images_shape'?"],
        ),
        (  # unknown parameter of a kind
            edit("kind: figures.grid, rows: 3", "kind: figures.grid, row: 3"),
            "grid:",
            "sections.visualize.checks.grid.row",
            ["figures.grid has no parameter 'row'", "did you mean 'rows'?"],
        ),
        (  # wrong type
            edit("kind: figures.grid, rows: 3", "kind: figures.grid, rows: three"),
            "grid:",
            "sections.visualize.checks.grid.rows",
            ["expected a whole number, found 'three'"],
        ),
        (  # a value of none of a union's types: no member name in the key
            edit("equals: {input_shape: [28, 28, 1]}", "equals: {input_shape: {height: 28}}"),
            "input_shape: {kind",
            "sections.build.checks.input_shape.equals.input_shape",
            ["expected a whole number or a number or text or true or false", "found {'height': 28}"],
        ),
        (  # points not adding up
            edit("x_shape: {kind: data.images_shape, points: 1", "x_shape: {kind: data.images_shape, points: 2"),
            "  prepare:",
            "sections.prepare",
            ["check points add up to 11, but the section is worth 10"],
        ),
        (  # a layer name that is not a Keras layer
            edit("- Dense: {units: 128", "- Dence: {units: 128"),
            "  layers:",
            "model.layers.1",
            ["'Dence' is not a Keras layer", "did you mean 'Dense'?"],
        ),
        (  # a variable name that is not an identifier
            edit("train_images: x_train", "train_images: x train"),
            "train_images: x",
            "variables.train_images",
            ["'x train' is not a Python variable name"],
        ),
        (  # an unknown role
            edit("train_images: x_train", "train_imgs: x_train"),
            "train_imgs",
            "variables.train_imgs",
            ["'train_imgs' is not allowed", "did you mean 'train_images'?"],
        ),
        (  # unknown top-level key
            edit("accuracy_margin: 0.03", "acuracy_margin: 0.03"),
            "acuracy_margin",
            "acuracy_margin",
            ["unknown key", "did you mean 'accuracy_margin'?"],
        ),
        (  # a check reading a layer the model does not declare
            edit("kind: model.layer, index: 2, last: true", "kind: model.layer, index: 5, last: true"),
            "output: {kind",
            "sections.build.checks.output",
            ["model.layer: index 5 is past the 3 layer(s) declared under `model: layers:`"],
        ),
        (  # a parameter count that cannot be derived
            edit("    - Flatten\n", "    - LSTM: {units: 4}\n", "  params: 101770\n", ""),
            "params: {kind",
            "sections.build.checks.params",
            ["LSTM", "state the model's `params:`"],
        ),
        (  # a fit setting Keras does not have
            edit("  batch_size: 128\n  epochs: 20", "  batch_size: 128\n  epoch: 20"),
            "  epoch: 20",
            "fit.epoch",
            ["fit has no argument 'epoch'", "did you mean 'epochs'?"],
        ),
        (  # a dataset loader Keras does not have
            edit("  loader: mnist", "  loader: fashion_mnsit"),
            "  loader:",
            "dataset.loader",
            ["'fashion_mnsit' is not a keras.datasets loader", "did you mean 'fashion_mnist'?"],
        ),
        (  # an optimizer Keras does not have
            edit("  optimizer: sgd", "  optimizer: sgdd"),
            "  optimizer: sgdd",
            "compile.optimizer",
            ["'sgdd' is not one of keras.optimizers", "did you mean 'SGD'?"],
        ),
        (  # a misspelt loss
            edit("  loss: categorical_crossentropy", "  loss: categorical_crossentrophy"),
            "  loss: categorical",
            "compile.loss",
            ["is not one of keras.losses", "did you mean 'categorical_crossentropy'?"],
        ),
        (  # a section named like a column of grades.csv
            edit("  evaluate:\n    title: Evaluate", "  total:\n    title: Evaluate"),
            "  total:",
            "sections.total",
            ["'total' is a column of grades.csv already"],
        ),
    ],
)
def test_a_mistake_names_the_file_line_and_key(
    tmp_path: Path, change: Callable[[str], str], marker: str, key: str, words: list[str]
) -> None:
    text = change(RUBRIC)
    path = write(tmp_path, text)
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key} (line {line_of(text, marker)}): "), message
    for word in words:
        assert word in message, message
    assert not re.search(r"\.(int|float|str|bool|list\[)", message), message


def test_the_parameter_count_is_derived_when_the_rubric_leaves_it_out(tmp_path: Path) -> None:
    rubric = load_rubric(write(tmp_path, RUBRIC.replace("  params: 101770\n", "")))
    assert rubric.assignment.model.params is None
    grade = score_facts("ada", make_facts(), rubric, CONTEXT)
    assert grade.total == 100


def test_a_rubric_without_a_section_scores_the_others(tmp_path: Path) -> None:
    start, end = RUBRIC.index("  visualize:\n"), RUBRIC.index("  build:\n")
    rubric = load_rubric(write(tmp_path, RUBRIC[:start] + RUBRIC[end:]))
    assert [s.id for s in rubric.sections] == ["prepare", "build", "train", "evaluate"]
    assert "indices" not in rubric.probe_request().variables
    grade = score_facts("ada", make_facts(kernel={"figures": []}), rubric, CONTEXT)
    assert grade.total == grade.max_total == 90


# ------------------------------------------------------------------------------------------- custom checks

CUSTOM = '''
"""The instructor's own check: the validation loss went down."""

from pydantic import Field

from grader.checks import Params, check_kind, fail, ok


class Improves(Params):
    by: float = Field(0.0, ge=0)


@check_kind("custom.history_improves", Improves)
def history_improves(facts, params, ctx):
    """The validation loss went down by more than `by` during training."""
    history = facts.kernel.history
    losses = history.values.get("val_loss", []) if history else []
    if len(losses) < 2:
        return fail("No validation loss to compare.")
    if losses[0] - losses[-1] > params.by:
        return ok(f"The validation loss went from {losses[0]:.3f} to {losses[-1]:.3f}.")
    return fail(f"The validation loss went from {losses[0]:.3f} to {losses[-1]:.3f}.")
'''

EXTRA_SECTION = """  extra:
    title: Beyond the assignment
    points: 5
    checks:
      improves: {kind: custom.history_improves, by: 0.1, points: 5, title: "The validation loss went down"}
"""


@pytest.fixture
def own_kinds() -> Iterator[None]:
    """Forgets the kinds a test's custom file registered."""
    before = set(KINDS)
    yield
    for name in set(KINDS) - before:
        del KINDS[name]


def test_a_custom_check_file_adds_kinds_that_score_from_facts(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, CUSTOM, "extra_checks.py")
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: extra_checks.py")
    rubric = load_rubric(write(tmp_path, text + EXTRA_SECTION))
    assert rubric.custom_checks == (tmp_path / "extra_checks.py").resolve()
    grade = score_facts("ada", make_facts(), rubric, CONTEXT)
    extra = next(s for s in grade.sections if s.id == "extra")
    assert extra.points == 5 and grade.total == 105
    assert extra.checks[0].message.startswith("The validation loss went from")
    flat = {"val_loss": [0.5, 0.45]}
    history = make_facts().kernel.history
    assert history is not None
    stalled = make_facts(kernel={"history": type(history)(2, ["val_loss"], flat, True)})
    assert next(s for s in score_facts("ada", stalled, rubric, CONTEXT).sections if s.id == "extra").points == 0


def test_invalid_yaml_names_its_line_and_the_problem(tmp_path: Path) -> None:
    text = RUBRIC.replace("  loader: mnist", "  loader: mnist\n   oops: 1", 1)
    with pytest.raises(RubricError) as error:
        load_rubric(write(tmp_path, text))
    message = str(error.value)
    assert f"(line {line_of(text, '   oops') + 1}" in message or f"(line {line_of(text, '   oops')}" in message
    assert "not valid YAML:" in message and "while parsing" not in message.split("YAML:")[1], message


BROKEN_CHECKS = '''
from grader.checks import check_kind


@check_kind("custom.raises")
def raises(facts, params, ctx):
    """Raises for the second student."""
    if facts.kernel.history is None:
        raise ValueError("boom")
    from grader.checks import ok
    return ok("fine")


@check_kind("custom.not_a_verdict")
def not_a_verdict(facts, params, ctx):
    """Returns a bool."""
    return True
'''


def test_a_check_that_fails_costs_that_check_only_and_says_where(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, BROKEN_CHECKS, "broken.py")
    extra = """  extra:
    points: 2
    checks:
      one: {kind: custom.raises, points: 1, title: "raises"}
      two: {kind: custom.not_a_verdict, points: 1, title: "bool"}
"""
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: broken.py")
    rubric = load_rubric(write(tmp_path, text + extra))
    fine = score_facts("ada", make_facts(), rubric, CONTEXT)
    assert fine.status == "error" and fine.total == 101
    assert "extra.two" in fine.message and "returned bool, not a verdict" in fine.message
    broken = score_facts("bo", make_facts(kernel={"history": None}), rubric, CONTEXT)
    one = next(c for s in broken.sections for c in s.checks if c.id == "one")
    assert one.points == 0 and "custom.raises" in one.message and "ValueError: boom" in one.message
    assert "broken.py" in one.message and broken.status == "error"
    assert broken.sections[0].points == 10  # the other checks are scored as usual


def test_a_custom_check_file_that_fails_to_import_is_one_line(tmp_path: Path, own_kinds: None) -> None:
    write(tmp_path, "import no_such_module_for_the_grader\n", "broken.py")
    text = RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: broken.py")
    path = write(tmp_path, text)
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "custom_checks (line " in message
    assert "broken.py failed to load: ModuleNotFoundError" in message


def test_a_missing_custom_check_file_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, RUBRIC.replace("similarity_threshold: 0.7", "similarity_threshold: 0.7\ncustom_checks: x.py")
    )
    with pytest.raises(RubricError, match="custom_checks .*file not found"):
        load_rubric(path)


def test_every_built_in_kind_is_documented_with_an_example() -> None:
    docs = (ROOT / "docs" / "rubric.md").read_text(encoding="utf-8")
    for name in KINDS:
        assert f"| `{name}` |" in docs and f"{{kind: {name}," in docs, name
    for name in INTEGRITY:
        assert f"`{name}`" in docs, name


def test_due_visibility_and_the_service_limit_are_read(tmp_path: Path) -> None:
    text = RUBRIC.replace("  evaluate:\n", "  evaluate:\n    visibility: hidden\n", 1)
    text = text.replace(
        "title: Image Classification using MNIST\n",
        "title: Image Classification using MNIST\ndue: 2026-12-18T23:59:00-06:00\n"
        "service:\n  submissions_per_hour: 3\n",
    )
    rubric = load_rubric(write(tmp_path, text))
    assert rubric.due is not None and rubric.due.utcoffset() is not None
    assert rubric.due.isoformat() == "2026-12-18T23:59:00-06:00"
    assert rubric.service.submissions_per_hour == 3
    assert {s.id for s in rubric.sections for c in s.checks if c.hidden} == {"evaluate"}
    default = load_rubric(write(tmp_path, RUBRIC, "plain.yaml"))
    assert default.due is None and not any(c.hidden for s in default.sections for c in s.checks)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("due: 2026-12-18T23:59:00\n", "due needs a time zone"),
        ("service:\n  submissions_per_hour: 0\n", "at least 1"),
        ("service:\n  per_hour: 3\n", "per_hour"),
    ],
)
def test_a_wrong_due_or_service_key_is_one_line(tmp_path: Path, line: str, says: str) -> None:
    with pytest.raises(RubricError, match=says):
        load_rubric(write(tmp_path, RUBRIC + line))


def test_a_check_can_be_hidden_alone(tmp_path: Path) -> None:
    marker = "      accuracy: {kind: evaluation.accuracy, points: 3,"
    assert marker in RUBRIC
    rubric = load_rubric(write(tmp_path, RUBRIC.replace(marker, marker + " visibility: hidden,")))
    assert [c.id for s in rubric.sections for c in s.checks if c.hidden] == ["accuracy"]
    with pytest.raises(RubricError, match="visibility"):
        load_rubric(write(tmp_path, RUBRIC.replace(marker, marker + " visibility: secret,")))
