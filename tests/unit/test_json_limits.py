"""Bounded JSON: nesting refused before json.loads recurses, huge integers made harmless."""

from __future__ import annotations

import math

import pytest

from v2g_gateway import json_limits


def test_depth_ignores_brackets_inside_strings() -> None:
    assert json_limits.depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert json_limits.depth('"\\"[[[["') == 0
    assert json_limits.loads('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}


def test_too_deep_is_a_value_error_naming_the_depth() -> None:
    with pytest.raises(ValueError, match="nested 100000 deep \\(at most 32"):
        json_limits.loads("[" * 100_000 + "]" * 100_000)
    assert json_limits.loads("[" * 32 + "]" * 32) is not None


def test_huge_integers_become_floats() -> None:
    assert json_limits.loads("1" + "0" * 400) == math.inf
    assert json_limits.loads("12345") == 12345 and isinstance(json_limits.loads("7"), int)


def test_bad_utf8_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        json_limits.loads(b"\xff\xfe{")
