"""The mutant list stays usable: every mutant is well formed and its edit still applies exactly once.

`make mutants` runs for minutes and only on demand; this check runs with the suite, so a
refactoring that moves a mutant's code, or a merge that garbles the list, is seen at once.
"""

from __future__ import annotations

from tests.mutants import MUTANTS, REPO


def test_every_mutant_applies_exactly_once() -> None:
    names = [mutant.name for mutant in MUTANTS]
    assert len(names) == len(set(names))
    for mutant in MUTANTS:
        assert mutant.old != mutant.new, mutant.name
        assert mutant.tests and all(isinstance(test, str) for test in mutant.tests), mutant.name
        text = (REPO / mutant.path).read_text()
        assert text.count(mutant.old) == 1, f"{mutant.name}: its edit applies {text.count(mutant.old)} times"
