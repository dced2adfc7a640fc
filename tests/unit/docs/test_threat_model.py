"""docs/security.md's issue 19 threat-model table names tests that exist: every row names at least
one test file (or bench), and every `file.py::test_name`, `::test_name` (the file before) or
`test_name` in parentheses after a file is a function defined in that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SECURITY = ROOT / "docs" / "security.md"
HEADING = "### Threat model: the OCPP port"
CODE = re.compile(r"`([^`]+)`")


def _rows() -> list[list[str]]:
    text = SECURITY.read_text()
    assert HEADING in text, f"{SECURITY} lost its section {HEADING!r}"
    rows = []
    for line in text.split(HEADING, 1)[1].splitlines():
        if line.startswith("### ") or line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert rows[0] == ["threat", "defence", "test"], rows[0]
    return rows[1:]


def _find(name: str) -> Path:
    path = ROOT / name
    if path.is_file():
        return path
    found = [p for p in (ROOT / "tests").rglob(Path(name).name) if p.is_file()]
    assert len(found) == 1, f"{name!r} names {len(found)} files"
    return found[0]


def _defines(path: Path, test: str) -> bool:
    return re.search(rf"^(async )?def {re.escape(test)}\(", path.read_text(), re.M) is not None


def test_every_threat_names_tests_that_exist() -> None:
    rows = _rows()
    assert len(rows) >= 6
    for threat, _defence, tests in rows:
        current: Path | None = None
        named_file = False
        for ref in CODE.findall(tests):
            file_part, _, test = ref.partition("::")
            if file_part.endswith(".py"):
                current = _find(file_part)
                named_file = True
            elif not file_part and test:
                pass  # `::test_name`: the file named before
            elif re.fullmatch(r"test_\w+", ref):
                test = ref  # `test_name` in parentheses after its file
            else:
                continue  # a topic name or a value, not a test
            if test:
                assert current is not None, f"{threat[:40]}: {ref} without a file before it"
                assert _defines(current, test), f"{threat[:40]}: {current.name} has no {test}"
        assert named_file, f"row {threat[:60]!r} names no test"
