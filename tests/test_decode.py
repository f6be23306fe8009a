"""The facts decoder against hostile JSON: it returns facts of the asked type or raises DecodeError, nothing else."""

from __future__ import annotations

import json
import math
import time
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from grader.facts import (
    MAX_FACTS_JSON_BYTES,
    ArrayFacts,
    Facts,
    HistoryFacts,
    KernelFacts,
    Reevaluation,
    facts_from_json,
    facts_to_json,
)
from grader.strictjson import MAX_DEPTH, DecodeError, decode
from tests.factories import make_facts

SCHEMAS = (Facts, KernelFacts, Reevaluation, ArrayFacts)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: Hypothesis also tries integers far past 64 bits
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40,
)


def decodes_or_refuses(text: str | bytes, schema: type[Any]) -> Any:
    try:
        value = decode(text, schema, max_bytes=MAX_FACTS_JSON_BYTES)
    except DecodeError:
        return None
    assert isinstance(value, schema)
    return value


@cache
def perfect_text() -> str:
    return facts_to_json(make_facts())


def perfect_data() -> dict[str, Any]:
    return dict(json.loads(perfect_text()))


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document where a value sits."""
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


PERFECT_PATHS = paths(perfect_data())[1:]


@FAST
@given(st.binary(max_size=300), st.sampled_from(SCHEMAS))
def test_random_bytes(raw: bytes, schema: type[Any]) -> None:
    decodes_or_refuses(raw, schema)


@FAST
@given(json_values, st.sampled_from(SCHEMAS))
def test_random_json(value: Any, schema: type[Any]) -> None:
    decodes_or_refuses(json.dumps(value), schema)


@FAST
@given(st.sampled_from(PERFECT_PATHS), json_values)
def test_valid_facts_with_any_one_value_replaced(path: tuple[Any, ...], value: Any) -> None:
    data = perfect_data()
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    decodes_or_refuses(json.dumps(data), Facts)


@FAST
@given(st.sampled_from(PERFECT_PATHS), st.text(min_size=1, max_size=10), st.none() | st.booleans() | st.text())
def test_an_unknown_key_anywhere_is_refused(path: tuple[Any, ...], key: str, value: Any) -> None:
    data = perfect_data()
    node = data
    for step in path:
        node = node[step]
    maps = ("values", "hooks_intact", "images")  # objects whose keys are data, not fields
    if not isinstance(node, dict) or key in node or (path and path[-1] in maps):
        return
    node[key] = value
    with pytest.raises(DecodeError, match="unknown field"):
        decode(json.dumps(data), Facts, max_bytes=MAX_FACTS_JSON_BYTES)


@FAST
@given(st.integers(min_value=1, max_value=400))
@example(100_000)
def test_nesting_is_bounded(depth: int) -> None:
    text = '{"present": true, "shape": ' + "[" * depth + "]" * depth + "}"
    value = decodes_or_refuses(text, ArrayFacts)
    if depth > MAX_DEPTH:
        assert value is None


@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("batch_size", "9" * 400),  # an integer field
        ("batch_size", "-" + "9" * 5000),  # past Python's own int-to-text limit
        ("batch_size", "9223372036854775808"),  # 2**63
        ("indices", "[" + "7" * 400 + "]"),
    ],
)
def test_an_absurd_integer_is_refused(field: str, number: str) -> None:
    data = json.loads(facts_to_json(make_facts()))["kernel"]
    text = json.dumps(data).replace(f'"{field}": {json.dumps(data[field])}', f'"{field}": {number}')
    assert number in text
    with pytest.raises(DecodeError, match="out of range"):
        decode(text, KernelFacts, max_bytes=MAX_FACTS_JSON_BYTES)


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1e999"])
def test_a_number_beyond_the_float_range_where_a_float_is_expected_is_refused(number: str) -> None:
    with pytest.raises(DecodeError, match="out of range"):
        decode(f'{{"ok": true, "accuracy": {number}}}', Reevaluation, max_bytes=1000)


def test_nan_and_infinity_tokens_are_kept_as_floats_and_round_trip() -> None:
    values = {"loss": [math.nan, math.inf, -math.inf, 0.5], "val_loss": [1.7e308]}
    facts = make_facts(kernel={"history": HistoryFacts(epochs=4, keys=sorted(values), values=values, from_fit=True)})
    text = facts_to_json(facts)
    assert "NaN" in text and "-Infinity" in text
    again = facts_from_json(text)
    assert again.kernel.history is not None
    loss = again.kernel.history.values["loss"]
    assert math.isnan(loss[0]) and loss[1:] == [math.inf, -math.inf, 0.5]
    assert facts_to_json(again) == text


def test_a_token_inside_a_string_stays_text() -> None:
    value = decode('{"ok": false, "message": "NaN \\" Infinity -Infinity"}', Reevaluation, max_bytes=1000)
    assert value.message == 'NaN " Infinity -Infinity'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"ok": 1}', "Expected `bool`, got `int`"),
        ('{"ok": true, "accuracy": "0.9"}', "Expected `float | null`, got `str`"),
        ('{"ok": true, "optimizer_iterations": 1.5}', "Expected `int | null`, got `float`"),
        ('{"ok": true, "optimizer_iterations": true}', "got `bool`"),
        ('{"ok": true, "grade": 100}', "unknown field `grade`"),
        ("[]", "Expected `object`"),
        ('{"ok": true', "not valid JSON"),
    ],
)
def test_wrong_types_and_unknown_keys_are_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(DecodeError, match=words.replace("|", r"\|")):
        decode(text, Reevaluation, max_bytes=1000)


def test_size_is_bounded_before_parsing() -> None:
    text = '{"ok": false, "message": "' + "x" * 2000 + '"}'
    with pytest.raises(DecodeError, match="over the limit"):
        decode(text, Reevaluation, max_bytes=1000)
    assert decode(text, Reevaluation, max_bytes=5000).message == "x" * 2000


def test_defaults_and_the_empty_kernel_facts_survive_a_round_trip() -> None:
    empty = make_facts(kernel=KernelFacts.empty(), reevaluation=Reevaluation(ok=False))
    again = facts_from_json(facts_to_json(empty))
    assert again == empty
    assert again.kernel.model.layers == [] and again.reevaluation.accuracy is None
    minimal = decode('{"present": false}', ArrayFacts, max_bytes=100)
    assert minimal == ArrayFacts(present=False) and minimal.shape is None


def test_facts_are_immutable() -> None:
    facts = make_facts()
    with pytest.raises(AttributeError):
        facts.kernel.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        b'[NaN, "' + b'\\"' * 200_000,  # a string left open, full of escaped quotes: once quadratic
        b"[" + b"NaN," * 200_000 + b"1]",
        b'{"message": "' + b"NaN Infinity " * 100_000 + b'"}',
    ],
    ids=["open string", "many tokens", "tokens in a string"],
)
def test_scanning_for_nan_tokens_is_linear(text: bytes) -> None:
    started = time.monotonic()
    decodes_or_refuses(text, Reevaluation)
    assert time.monotonic() - started < 10
