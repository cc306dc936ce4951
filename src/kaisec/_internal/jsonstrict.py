"""Strict JSON for untrusted documents: one reading only.

Python's ``json`` keeps the last of two equal keys while other parsers keep
the first, so a manifest with ``"core": false, "core": true`` could mean two
things to two readers. This module refuses duplicate keys, NaN/Infinity,
invalid UTF-8, oversized input and deep nesting, so every kaisec component
reads a document the same way. (The limits are checks around the stdlib
parser; no maintained library offers them together.)
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonProblem", "loads_strict"]


class JsonProblem(ValueError):
    """The document is not strict JSON within the limits; the message says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonProblem(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise JsonProblem(f"non-standard number {name}")


def _depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise JsonProblem(f"nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def loads_strict(data: bytes | str, *, max_size: int, max_depth: int) -> Any:
    """Parse one JSON document strictly.

    Raises:
        JsonProblem: too large, not UTF-8, malformed, duplicate keys, NaN or
            Infinity, or nested deeper than ``max_depth``.
    """
    if len(data) > max_size:
        raise JsonProblem(f"larger than {max_size} bytes ({len(data)})")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonProblem(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    else:
        text = data
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except JsonProblem:
        raise
    except RecursionError as exc:
        raise JsonProblem(f"nested deeper than {max_depth} levels") from exc
    except json.JSONDecodeError as exc:
        raise JsonProblem(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    _depth(value, max_depth)
    return value
