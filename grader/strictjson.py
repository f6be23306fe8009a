"""Decodes untrusted JSON into a schema type, with bounded size, nesting and numbers, failing only with DecodeError.

The schema's own rules (unknown keys refused, exact types: no bool for an int, no float for an int, no
string for a number) are msgspec's strict conversion. Around it this module bounds what msgspec does not:

- size: the text is refused above `max_bytes` before it is parsed;
- nesting: deeper than `MAX_DEPTH` containers is refused (the facts schema needs about 8); msgspec's own
  recursion guard stops pathological depths before that;
- integers: outside +-2**63 is refused (a 400-digit integer is a forgery: nothing the probe records is that
  large); a number outside the float range where a float is expected (1e400) is refused by msgspec;
- non-finite numbers: the `NaN`, `Infinity` and `-Infinity` tokens that Python's json writes (for a loss
  that diverged) are kept, as float NaN and +-inf. They are facts about the run; the code that draws or
  compares numbers is written for them (charts skip them, a comparison with NaN fails a check).
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
MAX_DEPTH = 32
MAX_INT = 2**63
# Python's json writes these outside strings; msgspec (rightly, for standard JSON) refuses them. Each is
# rewritten to a JSON string holding a NUL-prefixed marker and turned back into a float after parsing.
# Strings are matched to skip them; the closing quote is optional so that a string left open matches to the
# end rather than failing, which would make the scan quadratic (each quote inside it a new attempt).
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|-?Infinity|NaN')
_MARKERS = {"\x00NaN": math.nan, "\x00Infinity": math.inf, "\x00-Infinity": -math.inf}


class DecodeError(ValueError):
    """The text is not JSON of the expected shape; the message says where and why."""


def decode(text: str | bytes, schema: type[T], *, max_bytes: int) -> T:
    """`text` decoded as `schema`, or DecodeError; no other exception escapes for any input."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(raw) > max_bytes:
        raise DecodeError(f"the JSON is {len(raw):,} bytes, over the limit of {max_bytes:,}")
    if b"NaN" in raw or b"Infinity" in raw:
        raw = _TOKENS.sub(_marked, raw)
    try:
        data = msgspec.json.decode(raw)
    except RecursionError:
        raise DecodeError("the JSON is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    data = _restore_numbers(data)
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        raise DecodeError(str(exc)) from None


def _marked(match: re.Match[bytes]) -> bytes:
    token = match.group()
    return token if token.startswith(b'"') else b'"\\u0000' + token + b'"'


def _restore_numbers(data: Any) -> Any:
    """Turns the markers back into floats and checks depth and integer range, without recursion."""
    if type(data) is str:
        return _MARKERS.get(data, data)
    _check_int(data, "$")
    stack: list[tuple[dict[str, Any] | list[Any], int, str]] = []
    if type(data) is dict or type(data) is list:
        stack.append((data, 1, "$"))
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"the JSON is nested more than {MAX_DEPTH} levels deep (at `{path[:200]}`)")
        keys: Any = node.keys() if type(node) is dict else range(len(node))
        for key in keys:
            value = node[key]
            kind = type(value)
            if kind is str:
                if value in _MARKERS:
                    node[key] = _MARKERS[value]
            elif kind is dict or kind is list:
                stack.append((value, depth + 1, _step(path, key)))
            elif kind is int and not -MAX_INT < value < MAX_INT:
                _check_int(value, _step(path, key))
    return data


def _step(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key[:40]}"


def _check_int(value: Any, path: str) -> None:
    if type(value) is int and not -MAX_INT < value < MAX_INT:
        raise DecodeError(f"integer out of range at `{path[:200]}` ({value.bit_length()} bits)")
