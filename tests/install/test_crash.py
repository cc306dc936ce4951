"""SIGKILL at random points of install, update, uninstall and permission changes (24 points)."""

from __future__ import annotations

import random
from pathlib import Path

from . import crash


def test_kill_points(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    lines: list[str] = []
    failures = crash.run(24, seed, tmp_path, log=lines.append)
    assert failures == [], f"seed {seed}: " + "\n".join(lines)
    # the durations were measured, so kills landed inside the operations
    assert any(line.startswith("durations:") for line in lines)
