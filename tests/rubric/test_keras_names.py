"""Every name the rubric gives Keras is one of Keras's, with the closest one suggested for a typo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grader.rubric.load import load_rubric
from grader.rubric.model import RubricError
from tests.conftest import ROOT
from tests.rubric.edits import RUBRIC, assert_names_line_and_key, edit, write


@pytest.mark.parametrize(
    ("change", "marker", "key", "words"),
    [
        (  # a layer name that is not a Keras layer
            edit("- Dense: {units: 128", "- Dence: {units: 128"),
            "  layers:",
            "model.layers.1",
            ["'Dence' is not a Keras layer", "did you mean 'Dense'?"],
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
        (  # a misspelt metric
            edit("  metrics: [categorical_accuracy]", "  metrics: [categorical_acuracy]"),
            "  metrics:",
            "compile.metrics.0",
            ["'categorical_acuracy' is not one of keras.metrics", "did you mean 'categorical_accuracy'?"],
        ),
    ],
)
def test_a_name_keras_lacks_names_the_file_line_and_key(
    tmp_path: Path, change: Callable[[str], str], marker: str, key: str, words: list[str]
) -> None:
    assert_names_line_and_key(tmp_path, change, marker, key, words)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  loss: categorical_crossentropy", "  loss: CategoricalCrossentropy"),  # a class for a function
        ("  optimizer: sgd", "  optimizer: SGD"),
        ("  metrics: [categorical_accuracy]", "  metrics: [accuracy]"),  # compile picks it from the labels
        ("  metrics: [categorical_accuracy]", "  metrics: [acc]"),
    ],
)
def test_any_spelling_keras_accepts_loads(tmp_path: Path, old: str, new: str) -> None:
    assert old in RUBRIC
    load_rubric(write(tmp_path, RUBRIC.replace(old, new, 1)))


def test_a_rubric_loss_with_settings_loads_and_a_misspelt_class_is_named(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "quickstart" / "rubric.yaml").read_text()
    assert load_rubric(ROOT / "examples" / "quickstart" / "rubric.yaml").assignment.compile.loss is not None
    (tmp_path / "rubric.yaml").write_text(
        text.replace("{SparseCategoricalCrossentropy:", "{SparseCategoricalCrosentropy:")
    )
    with pytest.raises(RubricError, match=r"compile\.loss .*did you mean 'sparse_categorical_crossentropy'"):
        load_rubric(tmp_path / "rubric.yaml")
