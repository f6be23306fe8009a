"""Near-copies are found on students' own code: renames, comments and cell order do not hide a copy,
independent solutions and the reference's own lines are not flagged, and a class of 300 is compared all pairs."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from grader.near_copies import (
    MIN_SHARED,
    Baseline,
    OwnCode,
    Segment,
    baseline,
    class_own_code,
    code_cells,
    find_near_copies,
    near_copies,
    own_code,
    segments,
    similar_to,
)
from grader.rubric.model import DEFAULT_SIMILARITY_THRESHOLD
from tests.conftest import ROOT

SUBMISSIONS = ROOT / "submissions"
BASES = [ROOT / "reference" / "solution.ipynb", ROOT / "reference" / "template.ipynb"]
BEN = "ben_tf_keras_spellings"
BEN_COPIES = ("nia_copy_renamed_variables", "oli_copy_reordered_cells", "pat_copy_comments_changed")
THRESHOLD = DEFAULT_SIMILARITY_THRESHOLD


@pytest.fixture(scope="module")
def base() -> Baseline:
    return baseline(code_cells(path) for path in BASES)


def cells(name: str) -> list[str]:
    return code_cells(SUBMISSIONS / f"{name}.ipynb")


def pairs_of(sources: dict[str, list[str]], base: Baseline) -> dict[tuple[str, str], float]:
    return {(p.first, p.second): p.score for p in near_copies(class_own_code(sources, base), base, THRESHOLD)}


def test_own_code_leaves_out_the_reference_and_template_lines(base: Baseline) -> None:
    assert own_code(code_cells(BASES[0]), base).text == ""
    assert own_code(code_cells(BASES[1]), base).text == ""
    # ada is the reference with renamed loop variables and another comment: nothing of her own.
    assert own_code(cells("ada_perfect"), base).text == ""
    ben = own_code(cells(BEN), base).text
    assert "x_train.reshape(-1, 28, 28, 1)" in ben and 'loss="categorical_crossentropy"' in ben
    # tf.keras.layers.Dense(128, activation="sigmoid") is the reference's line spelled another way.
    assert "Dense" not in ben and "to_categorical" not in ben


@pytest.mark.parametrize("copy", BEN_COPIES)
def test_a_renamed_reordered_or_recommented_copy_is_flagged(base: Baseline, copy: str) -> None:
    found = pairs_of({BEN: cells(BEN), copy: cells(copy)}, base)
    assert found == {(BEN, copy): 1.0}


def test_hand_made_variants_of_a_solution_are_flagged(base: Baseline) -> None:
    original = cells(BEN)
    variants = {
        "renamed": [
            c.replace("x_train", "xtr").replace("indices", "picks").replace("tf", "tensorflow") for c in original
        ],
        "reordered": original[::-1],
        "whitespace": [c.replace(", ", ",").replace(" = ", "=").replace("\n", "\n\n") for c in original],
        "commented": ["# my own work, honestly\n" + c.replace("\n", "  # here\n") for c in original],
        "extended": [*original, "for layer in model.layers:\n    print(layer.name, layer.count_params())\n"],
    }
    found = pairs_of({"original": original, **variants}, base)
    for name in variants:
        assert found[tuple(sorted(("original", name)))] >= 0.8, (name, found)


def test_independent_solutions_and_reference_copies_are_not_flagged(base: Baseline) -> None:
    reference = code_cells(BASES[0])
    sources = {"ada": cells("ada_perfect"), "ben": cells(BEN), "ref1": reference, "ref2": list(reference)}
    assert pairs_of(sources, base) == {}


def test_the_same_one_line_mistake_is_not_a_copy(base: Baseline) -> None:
    # dev and kim both wrote `plt.title(y_train[idx])`: too little shared code to mean anything.
    sources = {"dev": cells("dev_sparse_labels"), "kim": cells("kim_onehot_titles")}
    assert "plt.title(y_train[idx])" in own_code(sources["kim"], base).text
    assert pairs_of(sources, base) == {}


def test_the_bundled_class_flags_exactly_bens_copies() -> None:
    paths = {p.stem: p for p in sorted(SUBMISSIONS.glob("*.ipynb"))}
    found = find_near_copies(paths, BASES, THRESHOLD)
    group = sorted((BEN, *BEN_COPIES))
    assert {(p.first, p.second) for p in found} == {(a, b) for i, a in enumerate(group) for b in group[i + 1 :]}
    flagged = similar_to(found)
    assert sorted(flagged) == group
    assert [other for other, _ in flagged[BEN]] == sorted(BEN_COPIES)


def test_code_many_students_share_is_common_knowledge(base: Baseline) -> None:
    snippet = (
        "fig, axes = plt.subplots(2, 5, figsize=(10, 4))\nfor ax, digit in zip(axes.flat, range(10)):\n"
        "    ax.imshow(x_train[np.argmax(y_train, axis=1) == digit][0].squeeze(), cmap='binary')\n"
        "    ax.set_title(f'digit {digit}')\n    ax.set_xticks([])\n    ax.set_yticks([])\n"
    )
    reference = code_cells(BASES[0])
    sources = {f"s{n:02d}": [*reference, snippet] for n in range(12)}
    assert pairs_of(sources, base) == {}  # 12 students with the lecture's snippet: nobody copied anybody
    assert len(pairs_of(dict(list(sources.items())[:3]), base)) == 3  # 3 of them alone: flagged


def test_shared_code_is_marked_in_both_submissions(base: Baseline) -> None:
    own = {BEN: own_code(cells(BEN), base), "nia": own_code(cells("nia_copy_renamed_variables"), base)}
    (pair,) = near_copies(own, base, THRESHOLD)
    for student, parts in ((pair.first, pair.first_code), (pair.second, pair.second_code)):
        assert "".join(s.text for s in parts) == own[student].text
        shared = "".join(s.text for s in parts if s.shared)
        assert len(shared) >= MIN_SHARED and "reshape(-1, 28, 28, 1)" in shared


def test_segments_mark_the_lines_mostly_inside_the_slices() -> None:
    code = OwnCode(("a = 1", "print(a)", "b = a + 2", "c = 3"), ("V=1", "print(V)", "V=V+2", "V=3"))
    # Normalised: "V=1" 0-3, "print(V)" 3-11, "V=V+2" 11-16, "V=3" 16-19.
    assert segments(code, [[2, 11], [11, 15]]) == (
        Segment("a = 1\n", False),
        Segment("print(a)\nb = a + 2\n", True),
        Segment("c = 3", False),
    )
    assert segments(code, [[], []]) == (Segment("a = 1\nprint(a)\nb = a + 2\nc = 3", False),)
    assert segments(code, [[0], [19]]) == (Segment(code.text, True),)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        b'{"cells": 5}',
        b'{"cells": [1, {"cell_type": "code", "source": 7}, {"cell_type": "code", "source": ["a = 1\\n", 2]}]}',
        b'{"nbformat": 3, "worksheets": [{"cells": [{"cell_type": "code", "input": "a = 1"}]}, 4]}',
        b'{"nbformat": 3, "worksheets": 5}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_broken_notebook_has_no_code_and_breaks_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    assert code_cells(path) in ([], ["a = 1"], ["a = 1\n"])


def test_code_cells_reads_code_only(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    cells = [{"cell_type": "markdown", "source": "# x = 1"}, {"cell_type": "code", "source": ["a", "b"]}]
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
    path.write_text(json.dumps(notebook))
    assert code_cells(path) == ["ab"]


# --- class scale -----------------------------------------------------------------------------------------

STATEMENTS = (
    "print(x_train[{a}].sum() / {b})",
    "sample_{a} = np.mean(x_test[:{b}], axis=0)",
    "plt.hist(np.argmax(y_train[:{a}], axis=1), bins={b})",
    "for j in range({a}):\n    print(j, model.predict(x_test[j:j + {b}], verbose=0).argmax())",
    "wrong_{a} = np.flatnonzero(model.predict(x_test[:{b}]).argmax(1) != y_test[:{b}].argmax(1))",
    "plt.plot(history.history['loss'][{a}:], label='loss after {b}')",
    "counts = np.bincount(np.argmax(y_train, axis=1), minlength={a})\nprint(counts[{b} % 10])",
    "if score[1] > 0.{a}:\n    print('better than {b} percent')",
)
# Spellings that a large share of a class would pick independently, as ben's are.
VARIANTS = (
    ("x_train = x_train / 255.0\nx_test = x_test / 255.0", "x_train = x_train.astype('float32') / 255"),
    ("indices = np.random.randint(0, x_train.shape[0], size=9)", "indices = random.sample(range(len(x_train)), 9)"),
    ("model.fit(x_train, y_train, 128, 20, validation_split=0.1)", "history = model.fit(x_train, y_train, epochs=20)"),
)


def synthetic_class(n: int, copies: int, rng: random.Random) -> tuple[dict[str, list[str]], set[tuple[str, str]]]:
    """`n` students: the reference, popular spellings and a few lines of their own; `copies` of them copied."""
    reference = code_cells(BASES[0])
    sources = {}
    for s in range(n - copies):
        own = [
            rng.choice(STATEMENTS).format(a=rng.randrange(10, 10_000), b=rng.randrange(10, 10_000))
            for _ in range(rng.randrange(4, 9))
        ]
        cells = [*reference, *(rng.choice(pair) for pair in VARIANTS)]
        for line in own:
            cells.insert(rng.randrange(len(cells) + 1), line)
        sources[f"student{s:03d}"] = cells
    planted = set()
    for c, original in enumerate(rng.sample(sorted(sources), copies)):
        # A comment of their own on every cell, two names changed, the cells shuffled.
        copy = [
            re.sub(r"\bj\b", "k", "# " + "".join(rng.choices("abc def", k=20)) + "\n" + cell).replace("sample_", "s_")
            for cell in sources[original]
        ]
        rng.shuffle(copy)
        sources[f"copier{c:03d}"] = copy
        planted.add((f"copier{c:03d}", original))
    return sources, planted


def test_a_class_of_300_is_compared_all_pairs(base: Baseline) -> None:
    sources, planted = synthetic_class(300, 10, random.Random(383))
    found = near_copies(class_own_code(sources, base), base, THRESHOLD)
    assert {(p.first, p.second) for p in found} == planted
