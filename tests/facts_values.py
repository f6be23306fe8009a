"""Values of the facts schema built from the schema itself (every Struct's fields and types): one document with
every optional part filled in, and a Hypothesis strategy for any valid facts."""

from __future__ import annotations

import types
from typing import Any, Literal, get_args, get_origin

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from msgspec import Struct
from msgspec.structs import fields

from grader.strictjson import _MARKERS

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    if origin is Literal:
        return args[0]
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
    if origin is Literal:
        return st.sampled_from(args)
    scalars = {
        bool: st.booleans(),
        int: st.integers(*INT64),
        float: st.floats(allow_nan=False),
        # A string that is exactly one of the decoder's NaN markers comes back as a float (strictjson's known
        # limit: only the notebook's own facts can be spoiled that way); any other text is valid.
        str: st.text(max_size=10).filter(lambda text: text not in _MARKERS),
    }
    return scalars[schema]
