"""Golden cases: each folder under tests/data/specs holds a spec and the exact `check` output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

CASES = Path(__file__).parent / "data" / "specs"


@pytest.mark.parametrize("case", sorted(path.name for path in CASES.iterdir() if path.is_dir()))
def test_check_output_matches_the_golden_file(case: str, tmp_path: Path) -> None:
    root = tmp_path / case
    shutil.copytree(CASES / case, root, ignore=shutil.ignore_patterns("expected.txt"))
    (root / "renderspec.toml").write_text('[renderspec]\nspecs = ["."]\n')
    run = run_cli("check", cwd=root)
    expected = (CASES / case / "expected.txt").read_text()
    assert run.out == expected
    assert run.code == (1 if "invalid:" in expected else 0)
