"""Reads a project and plans it: the glue between the edges (files, digests) and the pure planner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from renderspec.assets import AssetFacts
from renderspec.core.expansion import expand
from renderspec.core.planning import Plan, plan
from renderspec.core.problems import Problem, Severity
from renderspec.loading import FragmentFiles, read_sources, spec_paths
from renderspec.settings import Settings


@dataclass(slots=True)
class ProjectPlan:
    plan: Plan
    spec_files: list[str]
    files_read: int


def plan_project(settings: Settings, arguments: Sequence[str], cwd: Path) -> ProjectPlan:
    """Every shot of the named spec files (or the project's), validated, keyed and priced."""
    root = settings.root
    paths = spec_paths(arguments, root, settings.project.specs, cwd)
    sources, read_problems = read_sources(paths, root)
    expansion = expand(sources, FragmentFiles(root))
    expansion.problems.extend(read_problems)
    assets = AssetFacts(root, settings.cache_dir)
    facts = assets.facts(expansion.local_files())
    assets.save()
    result = plan(expansion, facts, provider_kind=settings.provider_kind, pricing=settings.pricing)
    for warning in assets.warnings:
        result.problems.append(Problem(file=str(settings.project.cache), message=warning, severity=Severity.WARNING))
    return ProjectPlan(plan=result, spec_files=[source.path for source in sources], files_read=assets.files_read)
