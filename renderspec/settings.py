"""Project settings: `[renderspec]` in renderspec.toml, overridden by the environment.

Only the CLI reads the environment; everything else receives a `Settings` value.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from renderspec.core.limits import DEFAULT_LIMITS, Limits
from renderspec.core.planning import Pricing
from renderspec.core.rules import RESOLUTIONS
from renderspec.errors import SettingsError

SETTINGS_FILE = "renderspec.toml"
ProviderName = Literal["local", "dashscope", "apiyi"]
PROVIDERS: tuple[str, ...] = ("local", "dashscope", "apiyi")

# What a render from each provider is: the emulator's previews are not the service's videos,
# while DashScope and the APIYI proxy run the same upstream model (so they share cache keys).
PROVIDER_KINDS: Mapping[str, str] = {"local": "emulator", "dashscope": "wan", "apiyi": "wan"}

# APIYI bills in USD at 98 % of the official price (wan-r2v-api.md §7).
APIYI_PRICES: Mapping[str, Mapping[str, float]] = {
    "wan2.7-r2v": {"720P": 0.084, "1080P": 0.14},
    "wan2.7-r2v-2026-06-12": {"720P": 0.084, "1080P": 0.14},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RemoteSettings(_Strict):
    """`[renderspec.remote]`: the shared second tier of the cache (design §9). Credentials never live here."""

    url: str | None = None
    endpoint: str | None = None
    region: str | None = None
    mode: Literal["read-write", "read"] = "read-write"
    required: bool = False
    lease: float = Field(default=300.0, gt=0)
    """Seconds a claim holds a shot for its build before another may take it over (renewed while the task runs)."""

    @property
    def read_only(self) -> bool:
        return self.mode == "read"


class ProjectSettings(_Strict):
    provider: ProviderName | None = None
    specs: list[str] = Field(default_factory=lambda: ["specs"])
    cache: str = "cache"
    renders: str = "renders"
    currency: str | None = None
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    base_url: str | None = None
    region: str = "beijing"
    poll_interval: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=1200.0, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    submit_rate: float = Field(default=5.0, gt=0)
    budget: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """What one `build` may spend, in the plan's currency (`--budget` wins); None: no limit."""
    allow_outside: list[str] = Field(default_factory=list)
    """Folders outside the project that references may read (absolute, or relative to the project)."""
    # Specs may come from untrusted pull requests: these bound what `check` and `plan` expand.
    max_matrix: int = Field(default=DEFAULT_LIMITS.max_matrix, ge=1, strict=True)
    max_shots: int = Field(default=DEFAULT_LIMITS.max_shots, ge=1, strict=True)

    @field_validator("prices")
    @classmethod
    def _known_resolutions(cls, prices: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for model, table in prices.items():
            unknown = sorted(set(table) - set(RESOLUTIONS))
            if unknown:
                raise ValueError(
                    f"prices for {model} name {', '.join(unknown)}; resolutions are {', '.join(RESOLUTIONS)}"
                )
        return prices

    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    apiyi_data_uri_max_bytes: int = Field(default=0, ge=0)
    apiyi_s3_bucket: str | None = None
    apiyi_s3_prefix: str = "renderspec/"
    apiyi_s3_endpoint: str | None = None
    apiyi_s3_region: str = "us-east-1"


class Settings(_Strict):
    """Everything the commands need, resolved from file, environment and flags."""

    root: Path
    project: ProjectSettings
    provider: ProviderName

    @property
    def provider_kind(self) -> str:
        return PROVIDER_KINDS[self.provider]

    @property
    def cache_dir(self) -> Path:
        return self.root / self.project.cache

    @property
    def outside_folders(self) -> list[Path]:
        return [self.root / folder for folder in self.project.allow_outside]

    @property
    def limits(self) -> Limits:
        return Limits(max_matrix=self.project.max_matrix, max_shots=self.project.max_shots)

    @property
    def pricing(self) -> Pricing:
        if self.project.prices or self.project.currency:
            return Pricing(currency=self.project.currency or "CNY", per_second=self.project.prices)
        if self.provider == "apiyi":
            return Pricing(currency="USD", per_second=APIYI_PRICES)
        return Pricing()


def find_root(start: Path) -> Path:
    """The nearest folder upwards holding renderspec.toml; without one, the git work tree's top
    level (so running from `specs/` never makes a `cache/` there); else `start`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    for folder in (start, *start.parents):
        if (folder / ".git").exists():  # a folder, or a file in a worktree or submodule
            return folder
    return start


@dataclass(frozen=True, slots=True)
class RemoteFlags:
    """The command line's say on the remote: it wins over the environment, which wins over the file."""

    url: str | None = None
    off: bool = False
    read_only: bool = False


def load_settings(
    root: Path, env: Mapping[str, str], provider: str | None = None, remote: RemoteFlags | None = None
) -> Settings:
    project = _read_project(root)
    project = project.model_copy(update={"remote": _remote(project.remote, env, remote or RemoteFlags())})
    chosen = provider or env.get("RENDERSPEC_PROVIDER") or project.provider
    if chosen is None:
        chosen = "dashscope" if env.get("DASHSCOPE_API_KEY") else "apiyi" if env.get("APIYI_API_KEY") else "local"
    if chosen not in PROVIDERS:
        raise SettingsError(f"unknown provider '{chosen}'; choose one of {', '.join(PROVIDERS)}")
    return Settings(root=root, project=project, provider=chosen)  # type: ignore[arg-type]


def _remote(configured: RemoteSettings, env: Mapping[str, str], flags: RemoteFlags) -> RemoteSettings:
    changes: dict[str, object] = {}
    url = flags.url or env.get("RENDERSPEC_REMOTE") or configured.url
    changes["url"] = None if flags.off or not url or url.strip().lower() in ("none", "off") else url.strip()
    mode = env.get("RENDERSPEC_REMOTE_MODE")
    if mode is not None:
        if mode not in ("read", "read-write"):
            raise SettingsError(f"RENDERSPEC_REMOTE_MODE is {mode[:40]!r}; it may be 'read' or 'read-write'")
        changes["mode"] = mode
    if flags.read_only:
        changes["mode"] = "read"
    if env.get("RENDERSPEC_REMOTE_REQUIRED", "").strip().lower() in ("1", "true", "yes", "on"):
        changes["required"] = True
    return configured.model_copy(update=changes)


def _read_project(root: Path) -> ProjectSettings:
    path = root / SETTINGS_FILE
    if not path.is_file():
        return ProjectSettings()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"{SETTINGS_FILE}: cannot read it: {error}") from None
    unknown = [key for key in data if key != "renderspec"]
    if unknown:
        raise SettingsError(
            f"{SETTINGS_FILE}{_line_of(text, unknown[0])}: unknown table '{unknown[0]}'; settings live under [renderspec]"
        )
    try:
        return ProjectSettings.model_validate(data.get("renderspec", {}))
    except ValidationError as error:
        lines = sorted(_setting_problem(text, problem) for problem in error.errors(include_url=False))
        raise SettingsError("\n".join(line for _, line in lines[:8])) from None


def _setting_problem(text: str, problem: Any) -> tuple[int, str]:
    """(line number, one line saying where and what) for one validation problem of renderspec.toml."""
    parts = [str(part) for part in problem["loc"]]
    where = ".".join(parts)
    line = _line_of(text, parts[-1]) if parts else ""
    message = str(problem["msg"])
    if problem["type"] == "extra_forbidden":
        model: type[BaseModel] = RemoteSettings if parts[:1] == ["remote"] and len(parts) == 2 else ProjectSettings
        known = sorted(model.model_fields)
        close = difflib.get_close_matches(parts[-1], known, n=2, cutoff=0.6)
        message = "unknown setting" + (
            f" (did you mean {' or '.join(close)}?)" if close else f"; known: {', '.join(known)}"
        )
    return (int(line[1:]) if line else 0), f"{SETTINGS_FILE}{line}: renderspec.{where}: {message}"


def _line_of(text: str, key: str) -> str:
    """`:LINE` of the first line that sets or opens `key`, or nothing when it cannot be found."""
    pattern = re.compile(rf"^\s*(?:\[+\s*)?(?:[\w.\"-]*\.)?\"?{re.escape(key)}\"?\s*(?:=|\]|\.)")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return f":{number}"
    return ""
