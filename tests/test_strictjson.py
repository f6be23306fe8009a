"""The strict decoder against hostile JSON: it returns a value of the asked type or raises DecodeError, nothing
else. The documents are facts built from the schema itself (tests/facts_values.py), so a field added to the schema
is covered here without a test to update."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grader.facts import MAX_FACTS_JSON_BYTES, ArrayFacts, Facts, KernelFacts, facts_to_json
from grader.reevaluation_facts import Reevaluation
from grader.strictjson import MAX_DEPTH, DecodeError, decode
from tests.facts_values import FAST, filled

SCHEMAS = (Facts, KernelFacts, Reevaluation, ArrayFacts)


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
    return facts_to_json(filled(Facts))


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
    # objects whose keys are data, not fields
    maps = ("values", "hooks_intact", "images", "variables", "config", "arguments", "settings")
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
    ("path", "number"),
    [
        (("summary_calls",), "9" * 400),  # an integer field
        (("summary_calls",), "-" + "9" * 5000),  # past Python's own int-to-text limit
        (("fit_calls", 0, "completed_epochs"), "9223372036854775808"),  # 2**63
        (("model", "input_shape", 0), "7" * 400),  # in a list
        (("variables", "key", "value"), "7" * 400),  # a recorded value
        (("fit_calls", 0, "arguments", "key"), "-9223372036854775809"),
    ],
)
def test_an_absurd_integer_is_refused(path: tuple[Any, ...], number: str) -> None:
    data = json.loads(perfect_text())["kernel"]
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = "NUMBER"
    text = json.dumps(data).replace('"NUMBER"', number)
    with pytest.raises(DecodeError, match="out of range"):
        decode(text, KernelFacts, max_bytes=MAX_FACTS_JSON_BYTES)


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1e999"])
def test_a_number_beyond_the_float_range_where_a_float_is_expected_is_refused(number: str) -> None:
    with pytest.raises(DecodeError, match="out of range"):
        decode(f'{{"ok": true, "accuracy": {number}}}', Reevaluation, max_bytes=1000)


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


# Long runs of NaN/Infinity tokens (their scan was once quadratic; benchmarks/bench_hostile_inputs.py times them).
NAN_TOKEN_RUNS = {
    "open string": b'[NaN, "' + b'\\"' * 200_000,  # a string left open, full of escaped quotes
    "many tokens": b"[" + b"NaN," * 200_000 + b"1]",
    "tokens in a string": b'{"message": "' + b"NaN Infinity " * 100_000 + b'"}',
}


@pytest.mark.parametrize("text", NAN_TOKEN_RUNS.values(), ids=list(NAN_TOKEN_RUNS))
def test_long_runs_of_nan_tokens_decode_or_are_refused(text: bytes) -> None:
    decodes_or_refuses(text, Reevaluation)
