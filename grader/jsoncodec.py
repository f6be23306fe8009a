"""Strict conversion between frozen dataclasses and JSON-ready data, driven by their type hints.

Facts arrive from untrusted kernels, so decoding rejects unknown keys and wrong types instead of
guessing; every error names the path of the offending value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union

T = TypeVar("T")


class DecodeError(ValueError):
    """The data does not fit the schema; the message names the path of the value."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_data(value: Any) -> Any:
    """A dataclass tree as dicts, lists and scalars (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


def from_data(cls: type[T], data: Any, path: str = "$") -> T:
    """Builds `cls` from JSON data, checking every field against its type hint."""
    return typing.cast(T, _decode(cls, data, path))


def _decode(tp: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, data, path)
            except DecodeError as exc:
                errors.append(str(exc))
        raise DecodeError("; ".join(errors) or f"{path}: unexpected null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, found {type(data).__name__}")
        hints = _hints(typing.cast(type, tp))
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(data) - names
        if unknown:
            raise DecodeError(f"{path}: unknown key(s) {sorted(unknown)}")
        kwargs = {k: _decode(hints[k], v, f"{path}.{k}") for k, v in data.items()}
        try:
            return typing.cast(Any, tp)(**kwargs)
        except TypeError as exc:
            raise DecodeError(f"{path}: {exc}") from None
    if origin is list:
        if not isinstance(data, list):
            raise DecodeError(f"{path}: expected a list, found {type(data).__name__}")
        return [_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data)]
    if origin is tuple:
        if not isinstance(data, list | tuple):
            raise DecodeError(f"{path}: expected a list, found {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise DecodeError(f"{path}: expected {len(args)} items, found {len(data)}")
        return tuple(_decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))
    if origin is dict:
        if not isinstance(data, dict):
            raise DecodeError(f"{path}: expected an object, found {type(data).__name__}")
        return {str(k): _decode(args[1], v, f"{path}.{k}") for k, v in data.items()}
    if tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        raise DecodeError(f"{path}: expected a number, found {type(data).__name__}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise DecodeError(f"{path}: expected an integer, found {type(data).__name__}")
    if tp in (str, bool):
        if type(data) is tp:
            return data
        raise DecodeError(f"{path}: expected {tp.__name__}, found {type(data).__name__}")
    raise DecodeError(f"{path}: unsupported type {tp!r}")
