"""Line numbers for value paths, found by scanning TOML text."""

from __future__ import annotations

from renderspec.core.locations import Locator

TEXT = '''[defaults]
duration = 5

[refs.mia]
image = "a.png"
[refs]
dress = { image = "b.png" }

[[shots]]
id = "one"
prompt = """
multi
id = "not a key"
"""
media = ["mia"]

[[shots]]
id = "two"
[shots.extra]
audio = true
'''


def test_keys_tables_and_array_tables_map_to_their_lines() -> None:
    locator = Locator(TEXT)
    assert locator.line_of(("defaults", "duration")) == 2
    assert locator.line_of(("refs", "mia", "image")) == 5
    assert locator.line_of(("refs", "dress", "image")) == 7  # inline table: the key's line
    assert locator.line_of(("shots", 0)) == 9
    assert locator.line_of(("shots", 0, "prompt")) == 11
    assert locator.line_of(("shots", 0, "media")) == 15  # not fooled by text inside the string
    assert locator.line_of(("shots", 1, "id")) == 18
    assert locator.line_of(("shots", 1, "extra", "audio")) == 20


def test_unknown_paths_fall_back_to_the_nearest_enclosing_place() -> None:
    locator = Locator(TEXT)
    assert locator.line_of(("shots", 1, "duration")) == 17
    assert locator.line_of(("nothing",)) is None
