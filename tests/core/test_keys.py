"""Content keys ignore how a spec is written and change with anything that could change the video."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderspec.core.model import FileFacts
from renderspec.core.spec import RefSpec, ShotSpec

from .support import STANDARD_FACTS, errors, plan_text

REFS = """
[refs.mia]
image = "refs/mia.png"
voice = "refs/mia.wav"
[refs.dress]
image = "refs/dress.png"
"""

SPEC = (
    REFS
    + """
[[shots]]
id = "walk"
media = ["mia", "dress"]
prompt = "{{ mia }} wears {{ dress }}"
negative_prompt = "blur"
duration = 6
seed = 11
first_frame = "refs/start.png"
"""
)


def key_of(text: str, facts: dict[str, FileFacts | None] | None = None, provider_kind: str = "emulator") -> str:
    result = plan_text(text, facts=facts, provider_kind=provider_kind)
    assert errors(result) == [], errors(result)
    (shot,) = result.shots
    return shot.key


BASE_KEY = key_of(SPEC)

SAME = {
    "reformatted": """
# a comment
[refs]
mia = { image = "refs/mia.png", voice = "refs/mia.wav" }
dress = {image="refs/dress.png"}

[[shots]]
seed=11
duration  =  6
first_frame = 'refs/start.png'
negative_prompt = '''blur'''
prompt = '{{mia}} wears {{   dress }}'
media = [ "mia",
          "dress" ]
id = "walk"
""",
    "tables reordered": """
[[shots]]
id = "walk"
prompt = "{{ mia }} wears {{ dress }}"
media = ["mia", "dress"]
first_frame = "refs/start.png"
duration = 6
seed = 11
negative_prompt = "blur"
[refs.dress]
image = "refs/dress.png"
[refs.mia]
voice = "refs/mia.wav"
image = "refs/mia.png"
""",
    "reference renamed": SPEC.replace("mia", "heroine").replace("refs/heroine", "refs/mia"),
    "shot renamed": SPEC.replace('id = "walk"', 'id = "promenade"'),
    "values moved to defaults": REFS
    + """
[defaults]
duration = 6
seed = 11
negative_prompt = "blur"
first_frame = "refs/start.png"
[[shots]]
id = "walk"
media = ["mia", "dress"]
prompt = "{{ mia }} wears {{ dress }}"
""",
    "defaults written out": SPEC.replace(
        "seed = 11", 'seed = 11\nresolution = "720P"\nprompt_extend = false\nwatermark = false\nmodel = "wan2.7-r2v"'
    ),
    "ratio ignored with a first frame": SPEC.replace("seed = 11", 'seed = 11\nratio = "9:16"'),
    "prompt built from a variable": '[vars]\nverb = "wears"\n' + SPEC.replace("}} wears {{", "}} {{ verb }} {{"),
}


@pytest.mark.parametrize("variant", sorted(SAME))
def test_key_is_unchanged_by_how_the_spec_is_written(variant: str) -> None:
    assert key_of(SAME[variant]) == BASE_KEY


def test_key_is_unchanged_when_files_move_or_are_touched() -> None:
    moved = SPEC.replace("refs/mia.png", "elsewhere/heroine.png")
    facts = dict(STANDARD_FACTS)
    facts["specs/elsewhere/heroine.png"] = facts["specs/refs/mia.png"]
    assert key_of(moved, facts) == BASE_KEY


def _bytes_changed(path: str) -> dict[str, FileFacts | None]:
    facts = dict(STANDARD_FACTS)
    old = facts[path]
    assert old is not None
    facts[path] = dataclasses.replace(old, sha256="9" * 64)
    return facts


def _pinned(*, image: str | None = None, voice: str | None = None) -> str:
    """SPEC with the dress image, or Mia's voice, served from a URL pinned to the given digest."""
    text = SPEC
    if image is not None:
        text = text.replace('image = "refs/dress.png"', f'image = "https://example.com/dress.png"\nsha256 = "{image}"')
    if voice is not None:
        text = text.replace(
            'voice = "refs/mia.wav"', f'voice = "https://example.com/mia.wav"\nvoice_sha256 = "{voice}"'
        )
    return text


# With a first frame, wan2.7 leaves the ratio out of the request by design (the frame sets the
# shape), so the ratio's own case starts from the same shot without one.
UNFRAMED = SPEC.replace('first_frame = "refs/start.png"\n', "")

# Each case: the spec it starts from, the spec that differs from it in one thing, file facts, provider.
CHANGED: dict[str, tuple[str, str, dict[str, FileFacts | None] | None, str]] = {
    "prompt": (SPEC, SPEC.replace("wears", "holds"), None, "emulator"),
    "negative_prompt": (SPEC, SPEC.replace('"blur"', '"noise"'), None, "emulator"),
    "duration": (SPEC, SPEC.replace("duration = 6", "duration = 7"), None, "emulator"),
    "seed": (SPEC, SPEC.replace("seed = 11", "seed = 12"), None, "emulator"),
    "resolution": (SPEC, SPEC.replace("seed = 11", 'seed = 11\nresolution = "1080P"'), None, "emulator"),
    "ratio": (UNFRAMED, UNFRAMED.replace("seed = 11", 'seed = 11\nratio = "1:1"'), None, "emulator"),
    "prompt_extend": (SPEC, SPEC.replace("seed = 11", "seed = 11\nprompt_extend = true"), None, "emulator"),
    "watermark": (SPEC, SPEC.replace("seed = 11", "seed = 11\nwatermark = true"), None, "emulator"),
    "model": (SPEC, SPEC.replace("seed = 11", 'seed = 11\nmodel = "wan2.7-r2v-2026-06-12"'), None, "emulator"),
    "extra": (SPEC, SPEC.replace("seed = 11", "seed = 11\nextra = { audio = true }"), None, "emulator"),
    "media order": (SPEC, SPEC.replace('["mia", "dress"]', '["dress", "mia"]'), None, "emulator"),
    "media": (SPEC, SPEC.replace('["mia", "dress"]', '["mia"]').replace(" wears {{ dress }}", ""), None, "emulator"),
    "first_frame": (
        SPEC,
        SPEC.replace('first_frame = "refs/start.png"', 'first_frame = "refs/mia.png"'),
        None,
        "emulator",
    ),
    "first frame removed": (SPEC, UNFRAMED, None, "emulator"),
    "first frame bytes": (SPEC, SPEC, _bytes_changed("specs/refs/start.png"), "emulator"),
    "image bytes": (SPEC, SPEC, _bytes_changed("specs/refs/dress.png"), "emulator"),
    "refs.image": (SPEC, SPEC.replace('image = "refs/dress.png"', 'image = "refs/start.png"'), None, "emulator"),
    "refs.video": (
        SPEC,
        SPEC.replace('image = "refs/dress.png"', 'video = "refs/bottle.mp4"'),
        None,
        "emulator",
    ),
    "voice bytes": (SPEC, SPEC, _bytes_changed("specs/refs/mia.wav"), "emulator"),
    "refs.voice": (SPEC, SPEC.replace('voice = "refs/mia.wav"\n', ""), None, "emulator"),
    "image became a URL": (
        SPEC,
        SPEC.replace('image = "refs/dress.png"', 'image = "https://example.com/dress.png"'),
        None,
        "emulator",
    ),
    "refs.sha256": (
        _pinned(image="1" * 64),
        _pinned(image="2" * 64),
        None,
        "emulator",
    ),
    "refs.voice_sha256": (
        _pinned(voice="1" * 64),
        _pinned(voice="2" * 64),
        None,
        "emulator",
    ),
    "provider kind": (SPEC, SPEC, None, "wan"),
}


@pytest.mark.parametrize("change", sorted(CHANGED))
def test_key_changes_with_anything_that_could_change_the_video(change: str) -> None:
    base, text, facts, provider_kind = CHANGED[change]
    assert key_of(text, facts, provider_kind) != key_of(base)


def test_every_spec_field_has_a_sensitivity_case() -> None:
    """A new field in the spec language must decide whether it changes the key (add a case above)."""
    # expansion-only: they decide which shots exist (take 1 is the shot as written; a take's own seed
    # changes its key, tests/core/test_takes.py), or which take is shown, not what one requests
    not_sent = {"id", "matrix", "takes", "pick"}
    assert not_sent <= set(ShotSpec.model_fields), "an excluded field no longer exists: update not_sent"
    shot_fields = set(ShotSpec.model_fields) - not_sent
    ref_fields = {f"refs.{name}" for name in RefSpec.model_fields}
    missing = sorted((shot_fields | ref_fields) - set(CHANGED))
    assert missing == [], f"no key sensitivity case in CHANGED for: {', '.join(missing)}"


_words = st.text(alphabet="abcdefghij ", min_size=1, max_size=30).filter(lambda s: s.strip() == s and s)


@given(
    prompt=_words,
    duration=st.integers(min_value=2, max_value=15),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
    name=st.sampled_from(["mia", "hero", "x1", "subject"]),
    inline=st.booleans(),
    defaults_first=st.booleans(),
)
def test_key_depends_only_on_content_for_random_specs(
    prompt: str, duration: int, seed: int, name: str, inline: bool, defaults_first: bool
) -> None:
    canonical = f'[refs.mia]\nimage = "refs/mia.png"\n[[shots]]\nid = "s"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}} {prompt}"\nduration = {duration}\nseed = {seed}\n'
    ref = f'[refs]\n{name} = {{ image = "refs/mia.png" }}\n' if inline else f'[refs.{name}]\nimage = "refs/mia.png"\n'
    defaults = f"[defaults]\nseed = {seed}\nduration = {duration}\n"
    shot = f'[[shots]]\nprompt = "{{{{{name}}}}} {prompt}"\nmedia = ["{name}"]\nid = "other"\n'
    text = (defaults + ref + shot) if defaults_first else (ref + shot + defaults)
    assert key_of(text) == key_of(canonical)
    assert key_of(canonical.replace(f"seed = {seed}", f"seed = {(seed + 1) % 2**31}")) != key_of(canonical)
