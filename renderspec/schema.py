"""`renderspec schema`: JSON Schemas of spec files and renderspec.toml, for editors.

The schemas are generated from the pydantic models that validate those files, so a field added
to a model appears in its schema without anyone listing it here. What this module adds is what
an editor needs and pydantic cannot know: TOML has no null (an optional key is one left out),
short descriptions for hovers, and draft-07 references, which taplo (Even Better TOML) resolves.
The schema is a help while typing; `renderspec check` stays the judge (it also checks what a
schema cannot: templates, files, the model's limits).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from renderspec.core.spec import SpecDocument
from renderspec.fsutil import write_atomic
from renderspec.settings import SETTINGS_FILE, ProjectSettings

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
SCHEMA_FOLDER = ".renderspec"
SPEC_SCHEMA_FILE = "renderspec-spec.schema.json"
SETTINGS_SCHEMA_FILE = "renderspec-settings.schema.json"
TAPLO_FILE = ".taplo.toml"

# `#/definitions/...` rather than pydantic's `#/$defs/...`: taplo validates with draft-07 rules.
_REF_TEMPLATE = "#/definitions/{model}"

# Hover texts, by (definition, property). A property the models no longer have is caught by a
# test; a new property simply has none until someone writes one.
_TEMPLATE = ' A template string such as "{{ d }}" is rendered first.'
_PARAMETERS = {
    "model": 'The model to render with, e.g. "wan2.7-r2v" (the default).',
    "resolution": '"720P" (the default) or "1080P".',
    "ratio": 'The aspect ratio: "16:9" (the default), "9:16", "1:1", "4:3" or "3:4". Ignored with a first frame.',
    "duration": "Seconds of video, an integer 2–15 (at most 10 with a reference video); default 5." + _TEMPLATE,
    "prompt_extend": "Let the service rewrite the prompt with an LLM (default false)." + _TEMPLATE,
    "watermark": "Ask the service for its watermark (default false)." + _TEMPLATE,
    "seed": "0–2147483647; the same seed and request give similar videos." + _TEMPLATE,
    "negative_prompt": "What the video should avoid (at most 500 characters).",
    "first_frame": "An image the video opens on (relative to this spec file, or an https:// URL).",
    "extra": "Parameters renderspec does not know, passed through to the service (with a warning).",
}
_DOCS: Mapping[str, Mapping[str, str]] = {
    "SpecDocument": {
        "defaults": "Request parameters for every shot of this file; any shot may override them.",
        "vars": "Variables for every template of this file (literal values, not templates).",
        "refs": "Named references. A shot lists them in `media`; in its prompt {{ name }} renders as image N or video N.",
        "shots": "The shots; each becomes renders/<id>.mp4.",
    },
    "Parameters": _PARAMETERS,
    "ShotSpec": {
        **_PARAMETERS,
        "id": "Unique across the project; names renders/<id>.mp4 (letters, digits, . _ -). May be a template.",
        "prompt": "What happens in the shot (at most 5000 characters), a Jinja template; {{ ref }} cites a reference.",
        "media": "The references this shot sends, by name; their order decides the citation numbers.",
        "matrix": "One shot per combination of these variables' values (a cartesian product).",
    },
    "RefSpec": {
        "image": "A JPEG/PNG/BMP/WEBP image, relative to this spec file or an https:// URL (240–8000 px a side).",
        "video": "An MP4/MOV video, relative to this spec file or an https:// URL (1–30 s).",
        "voice": "A wav/mp3 voice clip (1–10 s) sent as this subject's voice timbre.",
        "sha256": "Pins the bytes a URL serves (unpinned URLs get a warning).",
        "voice_sha256": "Pins the bytes a voice URL serves.",
    },
    "SettingsFile": {"renderspec": "renderspec's settings; every key is optional."},
    "ProjectSettings": {
        "provider": "local (the bundled emulator) | dashscope | apiyi; env RENDERSPEC_PROVIDER. Unset: picked from the API keys present.",
        "specs": "The default PATHs of check, plan and build (folders or files).",
        "cache": "The cache folder (not committed).",
        "renders": "Where renders/<id>.mp4 are materialised (not committed).",
        "currency": "The currency of `prices`.",
        "prices": 'Your price list per second: { "wan2.7-r2v" = { 720P = 0.6, 1080P = 1.0 } }.',
        "base_url": "The selected provider's base URL; env RENDERSPEC_BASE_URL.",
        "region": "DashScope: beijing | singapore.",
        "poll_interval": "Seconds between task queries (default: 15 DashScope, 10 APIYI, 0.2 emulator).",
        "timeout": "Give up waiting for a task after this many seconds (it stays journaled).",
        "concurrency": "Tasks in flight at once (-j).",
        "submit_rate": "Creates sent per second at most.",
        "budget": "Refuse builds whose estimate is over this (--budget wins); stop submitting at it.",
        "allow_outside": "Folders outside the project that references may read.",
        "max_matrix": "Combinations one shot's matrix may make (default 10,000).",
        "max_shots": "Shots of the whole project after expansion (default 50,000).",
        "remote": "The shared remote cache.",
        "apiyi_data_uri_max_bytes": "APIYI: send local files up to this size as data: URIs.",
        "apiyi_s3_bucket": "APIYI: publish local files to this S3 bucket as presigned links.",
    },
    "RemoteSettings": {
        "url": "s3://BUCKET/PREFIX, https://HOST/PATH (WebDAV) or a folder; env RENDERSPEC_REMOTE.",
        "endpoint": "S3-compatible services other than AWS (or AWS_ENDPOINT_URL).",
        "mode": '"read-write" or "read"; env RENDERSPEC_REMOTE_MODE.',
        "required": "A remote that cannot be used fails the command.",
        "lease": "Seconds a claim holds a shot for its build.",
    },
}


class SettingsFile(BaseModel):
    """renderspec.toml: one `[renderspec]` table (settings.py refuses any other)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    renderspec: ProjectSettings = Field(default_factory=ProjectSettings)


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (specs/*.toml)."""
    return _schema(
        SpecDocument,
        title="renderspec spec file",
        description=(
            "Shots, references and defaults of a renderspec storyboard. Any string may be a Jinja template; "
            "`renderspec check` validates what a schema cannot (templates, files, the model's limits)."
        ),
    )


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of renderspec.toml."""
    return _schema(
        SettingsFile,
        title="renderspec.toml",
        description="renderspec project settings, overridden by the environment and by flags.",
    )


def _schema(model: type[BaseModel], *, title: str, description: str) -> dict[str, Any]:
    generated = model.model_json_schema(ref_template=_REF_TEMPLATE)
    definitions = generated.pop("$defs", {})
    definitions[model.__name__] = generated  # so the docs table reaches the top level too
    for name, node in definitions.items():
        for field, text in _DOCS.get(name, {}).items():
            if field in node.get("properties", {}):
                node["properties"][field].setdefault("description", text)
    del definitions[model.__name__]
    document: dict[str, Any] = {"$schema": JSON_SCHEMA_DRAFT, "title": title, "description": description}
    document.update((key, value) for key, value in generated.items() if key not in ("title", "description"))
    if definitions:
        document["definitions"] = definitions
    cleaned: dict[str, Any] = _without_null(document)
    return cleaned


def _without_null(node: Any) -> Any:
    """The schema with `null` taken out: TOML cannot write it, and an editor should not offer it."""
    if isinstance(node, list):
        return [_without_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned = {key: _without_null(value) for key, value in node.items()}
    if "default" in cleaned and cleaned["default"] is None:
        del cleaned["default"]
    branches = cleaned.get("anyOf")
    if isinstance(branches, list):
        kept = [branch for branch in branches if branch != {"type": "null"}]
        if len(kept) == 1 and not (set(kept[0]) & set(cleaned) - {"anyOf"}):
            del cleaned["anyOf"]
            cleaned = {**kept[0], **cleaned}
        else:
            cleaned["anyOf"] = kept
    return cleaned


def schema_text(schema: Mapping[str, Any]) -> str:
    """The file's text: stable, indented and ending in a newline, so it diffs well in git."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def taplo_config(spec_schema_path: str, settings_schema_path: str, specs: Sequence[str] = ("specs",)) -> str:
    """A `.taplo.toml` that gives spec files and renderspec.toml their schemas (taplo, Even Better TOML).

    Paths are relative to the project root, where `.taplo.toml` lives.
    """
    globs = [folder if folder.endswith(".toml") else f"{_posix(folder)}/**/*.toml" for folder in specs]
    lines = [
        "# Editor support (taplo, Even Better TOML): schemas written by `renderspec schema`.",
        "",
        "[[rule]]",
        f"include = {json.dumps(globs)}",
    ]
    if any(_posix(folder) == "." for folder in specs):
        lines.append(f'exclude = ["{SETTINGS_FILE}"]')
    lines += [
        "[rule.schema]",
        f"path = {json.dumps(spec_schema_path)}",
        "",
        "[[rule]]",
        f'include = ["{SETTINGS_FILE}"]',
        "[rule.schema]",
        f"path = {json.dumps(settings_schema_path)}",
        "",
    ]
    return "\n".join(lines)


def _posix(folder: str) -> str:
    return Path(folder).as_posix().rstrip("/") or "."


@dataclass(frozen=True, slots=True)
class SchemaFiles:
    """Where the schema files of a project go, and the `.taplo.toml` text that points at them."""

    spec: Path
    settings: Path
    taplo: str

    @classmethod
    def at(cls, folder: Path, root: Path, specs: Sequence[str] = ("specs",)) -> SchemaFiles:
        spec, settings = folder / SPEC_SCHEMA_FILE, folder / SETTINGS_SCHEMA_FILE
        return cls(
            spec=spec, settings=settings, taplo=taplo_config(_relative(spec, root), _relative(settings, root), specs)
        )

    def contents(self) -> dict[Path, str]:
        return {self.spec: schema_text(spec_schema()), self.settings: schema_text(settings_schema())}


def _relative(path: Path, root: Path) -> str:
    """`path` as `.taplo.toml` at `root` names it: relative, with forward slashes, starting with ./ or ../."""
    relative = Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    return relative if relative.startswith("../") else f"./{relative}"


def write_schemas(files: SchemaFiles, root: Path, out: TextIO) -> None:
    """Writes the schemas (only when they changed) and `.taplo.toml` when the project has none.

    An existing `.taplo.toml` is the user's file: it is never rewritten, and the rules to add are
    printed unless it already names both schemas.
    """
    for path, text in files.contents().items():
        shown = _shown(path, root)
        if _read(path) == text:
            print(f"unchanged {shown}", file=out)
        else:
            write_atomic(path, text.encode("utf-8"))
            print(f"wrote {shown}", file=out)
    taplo = root / TAPLO_FILE
    existing = _read(taplo)
    if existing is None:
        write_atomic(taplo, files.taplo.encode("utf-8"))
        print(f"wrote {TAPLO_FILE}", file=out)
    else:
        out.write(taplo_advice(existing, files, root))


def taplo_advice(existing: str, files: SchemaFiles, root: Path) -> str:
    """What to add to the user's own `.taplo.toml`: nothing when it names both schemas already."""
    if all(_relative(path, root).removeprefix("./") in existing for path in (files.spec, files.settings)):
        return ""
    return f"{TAPLO_FILE} exists and was left as it is; for editor support add:\n\n{files.taplo}"


def print_document(which: str, files: SchemaFiles, out: TextIO) -> None:
    """Prints one document (`spec`, `settings` or `taplo`) on stdout, for a pipe or a custom location."""
    if which == "taplo":
        out.write(files.taplo)
    else:
        out.write(schema_text(spec_schema() if which == "spec" else settings_schema()))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
