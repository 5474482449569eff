"""What the fault tests share: damaging a file in each way a file gets damaged, and the check
that a command failed as a user mistake must fail (exit 2, one stderr line, no traceback)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

# How a file gets damaged: cut short by a full disk or a kill, emptied, overwritten with
# something else; and, for a JSON record, valid JSON of the wrong shape.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda b: b[: max(1, len(b) // 2)],
    "empty": lambda b: b"",
    "garbage": lambda b: b"\x00\xffnot what was written\x13" * 7,
}
JSON_DAMAGE = {**DAMAGE, "a list": lambda b: json.dumps([1, 2, 3]).encode()}


def damage(path: Path, how: str) -> None:
    path.write_bytes(JSON_DAMAGE[how](path.read_bytes()))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and mtime: equal before and after a command that
    must write nothing."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def one_line_error(capsys):
    """check(code, *fragments) -> the stderr line: exit code 2, exactly one line on stderr, no
    traceback, every fragment in it."""

    def check(code: int, *fragments: str) -> str:
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, err
        assert len(lines) == 1 and "Traceback" not in err, err
        for f in fragments:
            assert f in lines[0], lines[0]
        return lines[0]

    return check
