"""JSON from the network, parsed only when its nesting is bounded.

`json.loads` recurses once per level: a payload nested 100,000 deep raises RecursionError, which
is not a ValueError, escapes the handlers' `except ValueError` and ends the task that read it
without an answer. Counting brackets first (outside strings) is linear and cheap, so such a
payload is refused with a ValueError like any other malformed one.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any command, meter or forecast document the gateway reads (they nest 2-4 deep).
MAX_DEPTH = 32
# A string (escapes included) or one bracket; brackets inside strings are skipped with the string.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


# Integers this long become floats (inf beyond 1e308): a 400-digit integer would otherwise make
# every later float()/isfinite() raise OverflowError, which no ValueError handler catches.
MAX_INT_DIGITS = 300


def _int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


class JsonTooDeep(ValueError):
    """Nested deeper than the limit; a ValueError so existing handlers refuse it as bad JSON."""


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar)."""
    deepest = level = 0
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            level += 1
            deepest = max(deepest, level)
        elif c in "]}":
            level -= 1
    return deepest


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing (JsonTooDeep) a document nested deeper than `max_depth`."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if text.count("[") + text.count("{") > max_depth:
        found = depth(text)
        if found > max_depth:
            raise JsonTooDeep(f"JSON nested {found} deep (at most {max_depth} allowed)")
    return json.loads(text, parse_int=_int)


__all__ = ["MAX_DEPTH", "JsonTooDeep", "depth", "loads"]
