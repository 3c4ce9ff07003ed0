"""`renderspec schema`: the JSON Schemas agree with the models, and editors find them."""

from __future__ import annotations

import json
import re
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from renderspec.core.spec import SpecDocument
from renderspec.schema import SettingsFile, schema_text, settings_schema, spec_schema
from renderspec.settings import ProjectSettings
from tests.conftest import REPO, run_cli

EXAMPLE_SPECS = sorted(REPO.glob("specs/*.toml"))
GOLDEN_SPECS = sorted(REPO.glob("tests/data/specs/*/case.toml"))


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def _models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """`root` and every model its fields reach, found from the annotations (no field list here)."""
    seen: set[type[BaseModel]] = set()
    pending = [root]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model
        for field in model.model_fields.values():
            stack: list[Any] = [field.annotation]
            while stack:
                annotation = stack.pop()
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    pending.append(annotation)
                stack.extend(typing.get_args(annotation))


@pytest.mark.parametrize(("schema", "root"), [(spec_schema(), SpecDocument), (settings_schema(), SettingsFile)])
def test_every_field_of_every_model_is_in_the_schema(schema: dict[str, Any], root: type[BaseModel]) -> None:
    _validator(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["title"] and schema["description"]
    models = list(_models(root))
    assert len(models) > 1
    for model in models:
        node = schema if model is root else schema["definitions"][model.__name__]
        assert set(model.model_fields) == set(node["properties"]), model.__name__
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert set(node.get("required", [])) == required, model.__name__
        assert node["additionalProperties"] is False, f"{model.__name__} refuses unknown keys, so must its schema"


def test_no_schema_node_offers_null_which_toml_cannot_write() -> None:
    for schema in (spec_schema(), settings_schema()):
        text = json.dumps(schema)
        assert '"null"' not in text and '"default": null' not in text


def test_hover_texts_name_properties_that_exist() -> None:
    from renderspec.schema import _DOCS

    definitions = {
        **spec_schema()["definitions"],
        **settings_schema()["definitions"],
        "SpecDocument": spec_schema(),
        "SettingsFile": settings_schema(),
    }
    for name, texts in _DOCS.items():
        assert name in definitions, f"docs for a model the schemas no longer have: {name}"
        stale = set(texts) - set(definitions[name]["properties"])
        assert not stale, f"docs for {name} name fields it no longer has: {sorted(stale)}"


@pytest.mark.parametrize("path", EXAMPLE_SPECS, ids=lambda path: path.name)
def test_the_spec_schema_validates_the_example_storyboard(path: Path) -> None:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    SpecDocument.model_validate(document)
    _validator(spec_schema()).validate(document)


@pytest.mark.parametrize("path", GOLDEN_SPECS, ids=lambda path: path.parent.name)
def test_the_spec_schema_judges_the_golden_cases_as_the_model_does(path: Path) -> None:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    assert _validator(spec_schema()).is_valid(document) is _model_accepts(document)


def _spec_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[[shots]]" in block]


def test_the_spec_language_in_the_readme_validates() -> None:
    blocks = _spec_blocks()
    assert blocks
    for block in blocks:
        _validator(spec_schema()).validate(tomllib.loads(block))


# Each document is judged by the model and by the schema, and they must agree. The schema is
# looser only where `check` judges what a schema cannot (templates, files, model limits).
AGREEMENT = [
    {},
    {"shots": [{"id": "a", "prompt": "x", "duration": "{{ d }}", "seed": 3, "watermark": "{{ w }}"}]},
    {"shots": [{"id": "a", "prompt": "x", "matrix": {"side": ["l", 2, True, 1.5]}}]},
    {"shots": [{"id": "a", "prompt": "x", "matrix": {"side": []}}]},
    {"shots": [{"id": "a", "prompt": "x", "duraton": 5}]},
    {"shots": [{"id": "a"}]},
    {"shots": [{"id": "a", "prompt": "x", "duration": 5.5}]},
    {"shots": [{"id": "a", "prompt": "x", "prompt_extend": 1}]},
    {"shots": [{"id": "a", "prompt": "x", "media": "mia"}]},
    {"shots": [{"id": "a", "prompt": "x", "extra": {"audio": True}}]},
    {"defaults": {"seed": 7, "resolution": "720P"}, "vars": {"n": [1, 2]}},
    {"defaults": {"id": "a"}},
    {"refs": {"mia": {"image": "a.png", "voice": "a.wav", "sha256": "0" * 64}}},
    {"refs": {"mia": {"picture": "a.png"}}},
    {"refs": {"mia": "a.png"}},
    {"shot": []},
]


@pytest.mark.parametrize("document", AGREEMENT, ids=lambda document: json.dumps(document)[:60])
def test_the_spec_schema_accepts_what_the_model_accepts(document: dict[str, Any]) -> None:
    assert _validator(spec_schema()).is_valid(document) is _model_accepts(document)


def _model_accepts(document: dict[str, Any]) -> bool:
    try:
        SpecDocument.model_validate(document)
    except ValidationError:
        return False
    return True


def _settings_blocks() -> list[str]:
    """Each renderspec.toml the README shows; a block of alternatives ("# AWS S3", "# MinIO") is split."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[renderspec" in block]
    return [piece for block in blocks for piece in re.split(r"\n\n(?=# )", block)]


def test_the_settings_schema_validates_every_renderspec_toml_in_the_readme() -> None:
    blocks = _settings_blocks()
    assert len(blocks) >= 3
    validator = _validator(settings_schema())
    for block in blocks:
        document = tomllib.loads(block)
        ProjectSettings.model_validate(document["renderspec"])
        validator.validate(document)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("[renderspec]\n", True),
        ("", True),
        ('[renderspec]\nprovider = "local"\nconcurrency = 4\nbudget = 12.5\n', True),
        ('[renderspec.remote]\nurl = "s3://b/p"\nmode = "read"\nlease = 60\n', True),
        ('[renderspec]\nprovidr = "local"\n', False),
        ('[renderspec]\nprovider = "openai"\n', False),
        ("[renderspec]\nconcurrency = 0\n", False),
        ('[renderspec.remote]\nmode = "write"\n', False),
        ('[render]\nprovider = "local"\n', False),
    ],
)
def test_the_settings_schema_refuses_what_settings_refuse(text: str, valid: bool) -> None:
    assert _validator(settings_schema()).is_valid(tomllib.loads(text)) is valid


def test_schema_writes_both_schemas_and_a_taplo_config_that_points_at_them(example_project: Path) -> None:
    run = run_cli("schema", cwd=example_project / "specs")  # from a subfolder: files go to the root
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "wrote .renderspec/renderspec-spec.schema.json",
        "wrote .renderspec/renderspec-settings.schema.json",
        "wrote .taplo.toml",
    ]
    folder = example_project / ".renderspec"
    assert json.loads((folder / "renderspec-spec.schema.json").read_text()) == spec_schema()
    assert json.loads((folder / "renderspec-settings.schema.json").read_text()) == settings_schema()
    rules = tomllib.loads((example_project / ".taplo.toml").read_text())["rule"]
    for rule in rules:  # each rule's files validate against the schema it names
        schema = json.loads((example_project / rule["schema"]["path"]).read_text())
        matched = [path for pattern in rule["include"] for path in example_project.glob(pattern)]
        assert matched
        for path in matched:
            _validator(schema).validate(tomllib.loads(path.read_text()))
    assert {path.name for rule in rules for pattern in rule["include"] for path in example_project.glob(pattern)} == {
        "garden.toml",
        "product.toml",
        "renderspec.toml",
    }


def test_schema_again_changes_nothing_and_never_touches_the_users_taplo_file(example_project: Path) -> None:
    taplo = example_project / ".taplo.toml"
    taplo.write_text("[formatting]\nalign_entries = true\n")
    first = run_cli("schema", cwd=example_project)
    assert first.code == 0
    assert ".taplo.toml exists and was left as it is; for editor support add:" in first.out
    assert taplo.read_text() == "[formatting]\nalign_entries = true\n"
    snippet = first.out.split("add:\n\n", 1)[1]
    assert tomllib.loads(snippet)["rule"][0]["schema"]["path"] == "./.renderspec/renderspec-spec.schema.json"
    taplo.write_text(taplo.read_text() + "\n" + snippet)
    written = example_project / ".renderspec" / "renderspec-spec.schema.json"
    stamp = written.stat().st_mtime_ns
    again = run_cli("schema", cwd=example_project)
    assert again.out.splitlines() == [
        "unchanged .renderspec/renderspec-spec.schema.json",
        "unchanged .renderspec/renderspec-settings.schema.json",
    ]
    assert written.stat().st_mtime_ns == stamp


def test_schema_print_writes_nothing_and_out_picks_the_folder(example_project: Path) -> None:
    printed = run_cli("schema", "--print", "spec", cwd=example_project)
    assert printed.code == 0 and printed.out == schema_text(spec_schema())
    assert json.loads(run_cli("schema", "--print", "settings", cwd=example_project).out) == settings_schema()
    assert not (example_project / ".renderspec").exists() and not (example_project / ".taplo.toml").exists()
    taplo = run_cli("schema", "--print", "taplo", "--out", "editor", cwd=example_project).out
    assert tomllib.loads(taplo)["rule"][1]["schema"]["path"] == "./editor/renderspec-settings.schema.json"
    assert run_cli("schema", "--out", "editor", cwd=example_project).code == 0
    assert (example_project / "editor" / "renderspec-spec.schema.json").is_file()
    assert "./editor/renderspec-spec.schema.json" in (example_project / ".taplo.toml").read_text()
    assert run_cli("schema", "--print", "yaml", cwd=example_project).code == 2


def test_schema_follows_the_configured_spec_folders_and_survives_broken_settings(example_project: Path) -> None:
    settings = example_project / "renderspec.toml"
    settings.write_text('[renderspec]\nspecs = ["shots", "extra/one.toml"]\n')
    taplo = tomllib.loads(run_cli("schema", "--print", "taplo", cwd=example_project).out)
    assert taplo["rule"][0]["include"] == ["shots/**/*.toml", "extra/one.toml"]
    settings.write_text('[renderspec]\nprovidr = "local"\n')  # the schema is how an editor would flag this
    run = run_cli("schema", cwd=example_project)
    assert run.code == 0 and (example_project / ".renderspec" / "renderspec-settings.schema.json").is_file()
    assert "renderspec: note: the .taplo.toml rules assume specs/" in run.err


def test_the_readme_shows_the_taplo_config_schema_writes(example_project: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[rule.schema]" in block]
    assert shown == [run_cli("schema", "--print", "taplo", cwd=example_project).out]
