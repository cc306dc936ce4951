"""The gateway's hot-path JSON helpers agree with the json module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kaisec.daemon.gateway import _dumps, _loads

TEXTS = [
    '{"id": 1, "service": "contacts", "method": "find", "params": {"limit": 1}}',
    '{"id":"a","service":"x","method":"y","params":null}',
    ' {"id": 1}',  # leading and trailing whitespace: the full parser's path
    '{"id": 1}\n',
    "[1, 2]",
    '"just a string"',
    '{"n": NaN, "i": Infinity, "u": "\\u00e9\\ud83d\\ude00", "f": 1.5e300}',
    '{"deep": [[[[[[[[[[[]]]]]]]]]]]}',
]
BAD = ["{not json", '{"id": 1} trailing', "", "   ", '{"id": 1}}', "\ufeff{}", '{"a": "\x00"}']


@pytest.mark.parametrize("text", TEXTS)
def test_loads_agrees(text: str) -> None:
    assert json.dumps(_loads(text)) == json.dumps(json.loads(text))


@pytest.mark.parametrize("text", BAD)
def test_loads_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        _loads(text)


def test_loads_deep_nesting_is_a_recursion_error() -> None:
    with pytest.raises(RecursionError):
        _loads("[" * 100_000 + "]" * 100_000)


VALUES: list[Any] = [
    {"id": 7, "result": [{"id": "c1", "name": "Ada", "numbers": ["555"], "photo": None}]},
    {"id": None, "error": {"code": "INVALID_REQUEST", "permission": None, "message": "é ☃ \n"}},
    {"event": "x", "service": "s", "data": {"a": 1.5, "b": True, "c": False, "d": [], "e": {}}},
    {"nan": float("nan"), "big": 10**30, 1: "int key", "t": (1, 2)},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_is_json_dumps_compact(value: Any) -> None:
    assert _dumps(value) == json.dumps(value, separators=(",", ":"))


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        _dumps({"x": object()})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises((RecursionError, ValueError)):
        _dumps(cycle)
