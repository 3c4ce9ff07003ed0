"""The pure side of `explain`: which sources a shot read, and how two renders' requests differ."""

from __future__ import annotations

import hashlib
from typing import Any

from renderspec.core.explanation import (
    Change,
    FileChange,
    Origin,
    SourceText,
    file_changes,
    origins_of,
    prompt_diff,
    request_changes,
    source_statuses,
)
from renderspec.core.model import LocalFile
from tests.core.support import plan_text, shot


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_each_shot_records_the_spec_and_only_the_fragments_its_own_renders_read() -> None:
    spec = (
        shot(
            'id = "a-{{ look }}"\nmatrix = { look = ["warm", "cold"] }\nmedia = ["mia"]\n'
            "prompt = \"{{ mia }} {% include 'fragments/' ~ look ~ '.j2' %}\""
        )
        + '\n[[shots]]\nid = "plain"\nmedia = ["mia"]\nprompt = "{{ mia }} waits."\n'
    )
    fragments = {
        "specs/fragments/warm.j2": "Warm. {% include 'fragments/grain.j2' %}",
        "specs/fragments/cold.j2": "Cold.",
        "specs/fragments/grain.j2": "Grain.",
    }

    result = plan_text(spec, fragments=fragments)

    sources = {planned.id: dict(planned.sources) for planned in result.shots}
    spec_digest = digest(spec)
    assert sources == {
        "a-warm": {
            "specs/s0.toml": spec_digest,
            "specs/fragments/grain.j2": digest("Grain."),  # included by a fragment: read all the same
            "specs/fragments/warm.j2": digest(fragments["specs/fragments/warm.j2"]),
        },
        "a-cold": {"specs/s0.toml": spec_digest, "specs/fragments/cold.j2": digest("Cold.")},
        "plain": {"specs/s0.toml": spec_digest},  # Jinja's cache served nothing over to it
    }


def test_a_fragment_chosen_from_a_list_is_recorded_too() -> None:
    spec = shot(
        'id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} {% include [\'fragments/first.j2\', \'fragments/second.j2\'] %}"'
    )

    [planned] = plan_text(spec, fragments={"specs/fragments/first.j2": "1.", "specs/fragments/second.j2": "2."}).shots

    assert set(planned.sources) == {"specs/s0.toml", "specs/fragments/first.j2"}  # the one that rendered


def test_the_prompt_diff_is_unified_sentence_by_sentence() -> None:
    diff = prompt_diff("A walks. B sits. C runs.", "A walks. B stands. C runs.", old_label="old", new_label="new")

    assert diff == ["--- old", "+++ new", "@@ -1,3 +1,3 @@", " A walks.", "-B sits.", "+B stands.", " C runs."]
    assert prompt_diff("same", "same", old_label="o", new_label="n") == []
    whitespace = prompt_diff("A walks. B sits.", "A walks.  B sits.\n", old_label="o", new_label="n")
    assert whitespace[-2:] == ['-"A walks. B sits."', '+"A walks.  B sits.\\n"']  # visible, as JSON


def test_request_changes_name_the_provider_model_and_each_parameter() -> None:
    old = {"key_version": 1, "provider_kind": "emulator", "request": {"model": "m1", "parameters": {"duration": 5}}}
    new = {
        "key_version": 1,
        "provider_kind": "dashscope",
        "request": {"model": "m2", "parameters": {"duration": 8, "seed": 3}},
    }

    changes = request_changes(old, new)

    assert [str(change) for change in changes] == [
        "provider emulator → dashscope",
        "model m1 → m2",
        "duration 5 → 8",
        "seed unset → 3",
    ]
    assert request_changes({"request": "garbage"}, new)[0] == Change("cache format", None, 1)  # never a crash


def _payload(*media: dict[str, Any]) -> dict[str, Any]:
    return {"request": {"input": {"media": list(media)}}}


def _image(sha: str, voice: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reference_image", "url": {"sha256": sha * 64}}
    if voice:
        item["reference_voice"] = {"sha256": voice * 64}
    return item


def test_file_changes_pair_items_in_order_and_name_them_by_where_they_are_now() -> None:
    old = _payload(_image("a", voice="v"), _image("b"))
    new = _payload(_image("a", voice="w"), _image("c"))
    request = {
        "input": {
            "media": [
                {"url": LocalFile("specs/refs/mia.png"), "reference_voice": LocalFile("specs/refs/mia.wav")},
                {"url": LocalFile("specs/refs/dress.png")},
            ]
        }
    }

    changes = file_changes(old, new, request)

    assert changes == [
        FileChange("voice of image 1", "specs/refs/mia.wav", "v" * 64, "w" * 64, "changed"),
        FileChange("image 2", "specs/refs/dress.png", "b" * 64, "c" * 64, "changed"),
    ]
    assert str(changes[1]) == f"specs/refs/dress.png (image 2): {'b' * 12} → {'c' * 12}"


def test_an_added_reference_is_added_not_every_later_one_changed() -> None:
    old = _payload(_image("a"), _image("b"))
    new = _payload(_image("n"), _image("a"), _image("b"))
    request = {"input": {"media": [{"url": LocalFile(f"specs/refs/{name}.png")} for name in "nab"]}}

    assert file_changes(old, new, request) == [FileChange("image 1", "specs/refs/n.png", None, "n" * 64, "added")]
    assert file_changes(new, old, {"input": {"media": request["input"]["media"][1:]}}) == [
        FileChange("image 1", None, "n" * 64, None, "removed")
    ]


def test_source_statuses_compare_digests_and_say_nothing_without_a_record() -> None:
    new = {"s.toml": "1" * 64, "f.j2": "2" * 64, "g.j2": "3" * 64}
    old = {"s.toml": "1" * 64, "f.j2": "9" * 64, "gone.j2": "4" * 64}

    assert source_statuses(old, new) == {
        "s.toml": "unchanged",
        "f.j2": "changed",
        "g.j2": "added",
        "gone.j2": "removed",
    }
    assert source_statuses(None, new) == dict.fromkeys(new)


def test_an_added_line_comes_from_the_source_line_holding_most_of_its_literal_text() -> None:
    prompt = SourceText(
        "specs/a.toml", "{{ mia }} runs through the garden of {{ garden }}.\n{% include 'x' %}", 7, "prompt"
    )
    fragment = SourceText("specs/fragments/look.j2", "Intro.\nShot on {{ film }} film, soft {{ light }} light.")
    spec = SourceText("specs/a.toml", '[vars]\nlight = "blue hour"\nfilm = "35mm"\n')

    found = origins_of(
        [
            "image 1 runs through the garden of image 3.",
            "Shot on 35mm film, soft blue hour light.",
            "Nothing anyone wrote.",
        ],
        ["Shot on 35mm film, soft golden light."],
        [prompt, fragment],
        [spec],
    )

    assert found == [
        ("image 1 runs through the garden of image 3.", [Origin("specs/a.toml", 7, "prompt")]),
        (
            "Shot on 35mm film, soft blue hour light.",
            [Origin("specs/fragments/look.j2", 2), Origin("specs/a.toml", 2, "light")],  # 35mm was there before
        ),
        ("Nothing anyone wrote.", []),
    ]
    assert str(Origin("specs/a.toml", 7, "prompt")) == "specs/a.toml:7 (prompt)"
