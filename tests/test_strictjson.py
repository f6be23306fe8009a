"""The facts decoder against hostile JSON: it returns facts of the asked type or raises DecodeError, nothing else.

Valid facts are built from the schema itself (every Struct's fields and types), so a field added to the schema is
covered here without a test to update: one document with every optional part filled in, and a Hypothesis
strategy for any valid facts.
"""

from __future__ import annotations

import json
import math
import types
from functools import cache
from typing import Any, get_args, get_origin

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from msgspec import Struct
from msgspec.structs import fields, replace

from grader.facts import (
    MAX_FACTS_JSON_BYTES,
    ArrayFacts,
    Facts,
    HistoryFacts,
    KernelFacts,
    ProbeRequest,
    Reevaluation,
    facts_from_json,
    facts_to_json,
)
from grader.strictjson import _MARKERS, MAX_DEPTH, DecodeError, decode

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


INT64 = (1 - (1 << 63), (1 << 63) - 1)  # what the decoder accepts


def filled(schema: Any) -> Any:
    """A value of `schema` with every field present: optional parts set, each list and mapping one entry long."""
    origin, args = get_origin(schema), get_args(schema)
    if isinstance(schema, type) and issubclass(schema, Struct):
        return schema(**{f.name: filled(f.type) for f in fields(schema)})
    if origin is types.UnionType:
        return filled(next(arg for arg in args if arg is not type(None)))
    if origin is list:
        return [filled(args[0])]
    if origin is dict:
        return {"key": filled(args[1])}
    return {bool: True, int: 7, float: 0.5, str: "text"}[schema]


def valid(schema: Any) -> st.SearchStrategy[Any]:
    """Any value of `schema` that JSON can carry and the decoder must accept (no NaN: it never equals itself)."""
    origin, args = get_origin(schema), get_args(schema)
    if isinstance(schema, type) and issubclass(schema, Struct):
        return st.builds(schema, **{f.name: valid(f.type) for f in fields(schema)})
    if origin is types.UnionType:
        return st.one_of([valid(arg) for arg in args])
    if origin is list:
        return st.lists(valid(args[0]), max_size=2)
    if origin is dict:
        return st.dictionaries(st.text(max_size=5), valid(args[1]), max_size=2)
    if schema is type(None):
        return st.none()
    scalars = {
        bool: st.booleans(),
        int: st.integers(*INT64),
        float: st.floats(allow_nan=False),
        # A string that is exactly one of the decoder's NaN markers comes back as a float (strictjson's known
        # limit: only the notebook's own facts can be spoiled that way); any other text is valid.
        str: st.text(max_size=10).filter(lambda text: text not in _MARKERS),
    }
    return scalars[schema]


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
@given(valid(Facts))
def test_any_valid_facts_round_trip(facts: Facts) -> None:
    assert facts_from_json(facts_to_json(facts)) == facts


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


def test_nan_and_infinity_tokens_are_kept_as_floats_and_round_trip() -> None:
    values = {"loss": [math.nan, math.inf, -math.inf, 0.5], "val_loss": [1.7e308]}
    perfect = filled(Facts)
    history = HistoryFacts(epochs=4, keys=sorted(values), values=values, from_fit=True)
    facts = replace(perfect, kernel=replace(perfect.kernel, history=history))
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
    request = ProbeRequest(loader="mnist", variables=["model", "score"])
    empty = replace(filled(Facts), kernel=KernelFacts.empty(request), reevaluation=Reevaluation(ok=False))
    again = facts_from_json(facts_to_json(empty))
    assert again == empty
    assert again.kernel.model.layers == [] and again.reevaluation.accuracy is None
    assert again.kernel.request == request and not again.kernel.variable("score").present
    minimal = decode('{"present": false}', ArrayFacts, max_bytes=100)
    assert minimal == ArrayFacts(present=False) and minimal.shape is None


def test_facts_are_immutable() -> None:
    facts = filled(Facts)
    with pytest.raises(AttributeError):
        facts.kernel.summary_calls = 3


# Long runs of NaN/Infinity tokens (their scan was once quadratic; benchmarks/bench_hostile_inputs.py times them).
NAN_TOKEN_RUNS = {
    "open string": b'[NaN, "' + b'\\"' * 200_000,  # a string left open, full of escaped quotes
    "many tokens": b"[" + b"NaN," * 200_000 + b"1]",
    "tokens in a string": b'{"message": "' + b"NaN Infinity " * 100_000 + b'"}',
}


@pytest.mark.parametrize("text", NAN_TOKEN_RUNS.values(), ids=list(NAN_TOKEN_RUNS))
def test_long_runs_of_nan_tokens_decode_or_are_refused(text: bytes) -> None:
    decodes_or_refuses(text, Reevaluation)
