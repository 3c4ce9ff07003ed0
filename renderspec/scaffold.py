"""`renderspec init`: a new storyboard project that plans and renders offline from its first minute.

It writes settings, a cast file, a shot file that uses the cast, two reference images drawn here
(so nothing is downloaded and every file is valid for the model), git's ignore and merge
attributes, and the editor schemas. It never overwrites: every target is checked before the first
byte is written, and each file is written atomically.
"""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from renderspec.errors import WorkspaceError
from renderspec.fsutil import write_atomic
from renderspec.schema import SCHEMA_FOLDER, TAPLO_FILE, SchemaFiles, taplo_advice
from renderspec.settings import SETTINGS_FILE


class Policy(enum.Enum):
    """What to do when a file is already there."""

    NEW = "new"  # refuse: the project is not empty where init writes
    LINES = "lines"  # add the lines it lacks (.gitignore, .gitattributes are often there already)
    KEEP = "keep"  # leave it and print what to add (the user's own .taplo.toml)


@dataclass(frozen=True, slots=True)
class ScaffoldFile:
    path: str
    """Relative to the project, with forward slashes."""
    data: bytes
    policy: Policy = Policy.NEW


SETTINGS_TEXT = f"""\
# renderspec settings. Every key is optional; the README's "Settings" lists them all.
# Editors that read .taplo.toml check this file against {SCHEMA_FOLDER}/.

[renderspec]
specs = ["specs"]          # the folders check, plan and build read
# provider = "local"       # local (the offline emulator) | dashscope | apiyi; unset: picked by the API key you export
# budget = 20              # refuse a build whose estimate is over this amount
"""

CAST_TEXT = """\
# The cast: references and variables that shot files bring in with `uses = ["cast.toml"]`.
# Paths are relative to this file's folder. In a shot's prompt {{ ava }} becomes "image 1",
# "image 2"... in the order of that shot's `media`.

[vars]
place = "a quiet harbour at dawn"

[refs.ava]
image = "refs/ava.png"

[refs.ben]
image = "refs/ben.png"
"""

SHOTS_TEXT = """\
# Each shot becomes renders/<id>.mp4. `renderspec plan` shows what would render and why.
uses = ["cast.toml"]

[defaults]
duration = 5
seed = 7

[[shots]]
id = "opening"
media = ["ava", "ben"]
prompt = "{{ ava }} waves to {{ ben }} across {{ place }}, soft morning light, gentle handheld camera."
"""

GITIGNORE_TEXT = """\
# renderspec: rebuilt from renderspec.lock and the cache (commit the lock, not these)
/cache/
/renders/
"""

GITATTRIBUTES_TEXT = """\
# renderspec.lock merges shot by shot with renderspec's merge driver; once per clone run:
#   git config merge.renderspec.driver "renderspec lock merge %O %A %B"
renderspec.lock merge=renderspec
"""

NEXT_STEPS = """\
  renderspec plan                     # the shot is new: the request it would send, and its cost
  renderspec build --provider local   # renders a preview offline (the bundled emulator) into renders/
  git config merge.renderspec.driver "renderspec lock merge %O %A %B"   # once per clone, see .gitattributes
"""


def scaffold_files(schemas: SchemaFiles, root: Path) -> list[ScaffoldFile]:
    """Every file of a new project at `root`, with the editor schemas where `schemas` puts them."""
    return [
        ScaffoldFile(SETTINGS_FILE, SETTINGS_TEXT.encode()),
        ScaffoldFile("specs/cast.toml", CAST_TEXT.encode()),
        ScaffoldFile("specs/shots.toml", SHOTS_TEXT.encode()),
        ScaffoldFile("specs/refs/ava.png", portrait(hair=(70, 40, 30), clothes=(60, 90, 140))),
        ScaffoldFile("specs/refs/ben.png", portrait(hair=(200, 160, 90), clothes=(150, 60, 50), skin=(200, 150, 120))),
        *(ScaffoldFile(path.relative_to(root).as_posix(), text.encode()) for path, text in schemas.contents().items()),
        ScaffoldFile(TAPLO_FILE, schemas.taplo.encode(), Policy.KEEP),
        ScaffoldFile(".gitignore", GITIGNORE_TEXT.encode(), Policy.LINES),
        ScaffoldFile(".gitattributes", GITATTRIBUTES_TEXT.encode(), Policy.LINES),
    ]


def portrait(
    hair: tuple[int, int, int], clothes: tuple[int, int, int], skin: tuple[int, int, int] = (224, 182, 150)
) -> bytes:
    """A 480x640 PNG head and shoulders: drawn, so no third-party picture, and inside the model's
    image rules (240–8000 px a side, aspect within 1:8)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 640), (232, 222, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 90, 310, 250), fill=skin)
    draw.pieslice((150, 60, 330, 260), 180, 360, fill=hair)
    draw.ellipse((205, 150, 225, 165), fill=(40, 40, 60))
    draw.ellipse((255, 150, 275, 165), fill=(40, 40, 60))
    draw.arc((215, 185, 265, 215), 20, 160, fill=(150, 60, 60), width=4)
    draw.rectangle((215, 250, 265, 280), fill=skin)
    draw.polygon([(140, 640), (180, 300), (300, 300), (340, 640)], fill=clothes)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def init_project(root: Path, cwd: Path, out: TextIO) -> None:
    """Writes a new project at `root`, or nothing at all when any file it would create exists."""
    if root.exists() and not root.is_dir():
        raise WorkspaceError(
            f"{_shown(root, cwd)} is a file, not a folder; init needs a folder (it is made if missing)"
        )
    schemas = SchemaFiles.at(root / SCHEMA_FOLDER, root)
    files = scaffold_files(schemas, root)
    taken = [file.path for file in files if file.policy is Policy.NEW and _is_taken(root, file.path)]
    taken += [file.path for file in files if file.policy is not Policy.NEW and _is_blocked(root, file.path)]
    if taken:
        raise WorkspaceError(
            f"{_where(root, cwd)} already has {', '.join(taken)}; nothing was written",
            hint="start in an empty folder, or move those aside",
        )
    print(f"started a storyboard in {_where(root, cwd)}:", file=out)
    advice = ""
    for file in files:
        path = root / file.path
        existing = path.read_bytes() if file.policy is not Policy.NEW and path.exists() else None
        if existing is None:
            write_atomic(path, file.data)
            print(f"  wrote {file.path}", file=out)
        elif file.policy is Policy.LINES:
            merged = _with_lines(existing, file.data)
            if merged != existing:
                write_atomic(path, merged)
                print(f"  added to {file.path}", file=out)
        else:
            advice = taplo_advice(existing.decode("utf-8", "replace"), schemas, root)
    out.write(advice)
    print("next:", file=out)
    if root.resolve() != cwd.resolve():
        print(f"  cd {_shown(root, cwd)}", file=out)
    out.write(NEXT_STEPS)


def _is_taken(root: Path, relative: str) -> bool:
    """True when `relative` exists (a link too, even a broken one) or a parent of it is not a folder."""
    path = root / relative
    return path.is_symlink() or path.exists() or _is_blocked(root, relative)


def _is_blocked(root: Path, relative: str) -> bool:
    parts = Path(relative).parts
    for depth in range(1, len(parts)):
        parent = root.joinpath(*parts[:depth])
        if parent.exists() and not parent.is_dir():
            return True
    target = root / relative
    return target.exists() and not target.is_file()


def _with_lines(existing: bytes, wanted: bytes) -> bytes:
    """`existing` with the rules of `wanted` it lacks appended (comments only along with a new rule)."""
    have = {line.strip() for line in existing.decode("utf-8", "replace").splitlines()}
    lines = wanted.decode().splitlines()
    if all(line.startswith("#") or line.strip() in have for line in lines):
        return existing
    added = [line for line in lines if line.startswith("#") or line.strip() not in have]
    separator = b"" if not existing or existing.endswith(b"\n") else b"\n"
    return existing + separator + ("\n".join(added) + "\n").encode()


def _shown(root: Path, cwd: Path) -> str:
    try:
        return root.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return str(root)


def _where(root: Path, cwd: Path) -> str:
    return "this folder" if root.resolve() == cwd.resolve() else _shown(root, cwd)
