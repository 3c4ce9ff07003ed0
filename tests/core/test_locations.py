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


def test_items_of_an_inline_array_over_several_lines_have_their_own_lines() -> None:
    text = (
        "[cuts.master]\n"
        "shots = [ # the opening\n"
        '  "a", "b,c",  # two on a line, a comma in a string\n'
        "  { shot = 'd', in = [1, 2] },\n"
        '  """e\n'
        '""",\n'
        "  'f'\n"
        "]\n"
        'size = "640x360"\n'
        "[cuts.other]\n"
        'shots = ["x", "y"]\n'
        "inline = { shots = ['z'] }\n"
    )
    locator = Locator(text)
    path = ("cuts", "master", "shots")
    assert [locator.item_line(path, index) for index in range(5)] == [3, 3, 4, 5, 7]
    assert locator.item_line(path, 5) == 2  # no such item: the array's own line
    assert locator.item_line(("cuts", "other", "shots"), 1) == 11
    assert locator.item_line(("cuts", "other", "inline", "shots"), 0) == 12  # not indexed: the enclosing key's line
    assert locator.item_line(("cuts", "master", "size"), 0) == 9  # not an array: its own line
