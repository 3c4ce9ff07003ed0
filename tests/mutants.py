"""Breaks the product on purpose, one known way at a time, and reports which breakages the tests miss.

Not part of `make test` (it runs the chosen tests once per mutant: several minutes). Run it with
`make mutants`, or `.venv/bin/python tests/mutants.py [NAME-SUBSTRING...]`. Each mutant edits one
file of a scratch copy of the working tree and runs the tests that should catch it; a mutant that
leaves them green *survives*, and the script exits 1. Every edit must apply exactly once, so a
refactoring that moves the code makes the script fail loudly instead of testing nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIME_LIMIT = 300.0  # seconds a mutant's tests may run; longer means they no longer terminate


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    # -- from the mutation review ------------------------------------------------------------------
    Mutant(
        "ratio dropped from the content key",
        "renderspec/core/planning.py",
        "    parameters.update(draft.extra)\n",
        "    parameters.update(draft.extra)\n    parameters.pop('ratio', None)\n",
        ("tests/core/test_keys.py",),
    ),
    Mutant(
        "LocalStore.put made non-atomic (writes straight into the entry's folder)",
        "renderspec/store.py",
        '        stage = self.folder / f"{STAGE_PREFIX}{uuid.uuid4().hex}"\n',
        "        stage = folder\n",
        ("tests/test_workspace.py",),
    ),
    Mutant(
        "the record of what was sent keeps link signatures and data: URIs",
        "renderspec/executor.py",
        "    return map_media(body, shown)\n",
        "    return dict(body)\n",
        ("tests/test_ledger.py::test_the_record_of_what_was_sent_keeps_no_link_signatures",),
    ),
    Mutant(
        "recovery's known-id filter removed",
        "renderspec/recovery.py",
        "            if task_id in known or (task_id in seen and seen[task_id].final):\n",
        "            if task_id in seen and seen[task_id].final:\n",
        ("tests/test_recovery.py", "tests/test_ledger.py::test_a_task_only_the_cache_remembers_is_never_adopted"),
    ),
    Mutant(
        "matching several lost creates by what they sent disabled (first candidate wins)",
        "renderspec/recovery.py",
        "    return bool(common) and all(sent[name] == reported[name] for name in common)\n",
        "    return True\n",
        ("tests/test_recovery.py",),
    ),
    Mutant(
        "--adopt ignored",
        "renderspec/build.py",
        "    for shot_id, task_id in args.adopt.items():\n",
        "    for shot_id, task_id in {}.items():\n",
        ("tests/test_ledger.py::test_apiyi_has_no_task_list_so_a_lost_create_stops_the_build_until_a_person_decides",),
    ),
    Mutant(
        "the core imports an edge module (from renderspec import fsutil)",
        "renderspec/core/keys.py",
        "from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf\n",
        "from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf\nfrom renderspec import fsutil  # noqa: F401\n",
        ("tests/core/test_purity.py",),
    ),
    Mutant(
        "the core imports an edge module (import renderspec.manifest)",
        "renderspec/core/keys.py",
        "from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf\n",
        "from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf\nimport renderspec.manifest  # noqa: F401\n",
        ("tests/core/test_purity.py",),
    ),
    # -- one per numbered item of the trust issue --------------------------------------------------
    Mutant(
        "1: a create answered 5xx is retried as if it were refused",
        "renderspec/providers/http.py",
        "    return 400 <= status < 500\n",
        "    return 400 <= status < 600\n",
        ("tests/test_ledger.py::test_a_create_answered_with_a_gateway_error_is_found_not_sent_again",),
    ),
    Mutant(
        "2: the only unknown task is adopted whatever it rendered",
        "renderspec/recovery.py",
        "    found = [c for c in finals if c.facts is not None and _in_window(item, c) and agrees(item.facts, c.facts)]\n",
        "    found = [c for c in finals if _in_window(item, c)]\n",
        ("tests/test_ledger.py::test_a_superseded_task_is_never_cached_under_a_new_key", "tests/test_recovery.py"),
    ),
    Mutant(
        "3: cache entries' task ids are not known",
        "renderspec/build.py",
        "                stored_ids = project.store.task_ids()",
        "                stored_ids = set()",
        ("tests/test_ledger.py::test_a_task_only_the_cache_remembers_is_never_adopted",),
    ),
    Mutant(
        "4: verification checks the header and first frame only (no packet coverage)",
        "renderspec/media.py",
        '            for each, kind in [(stream, "video"), (audio, "audio")]:\n                if each is not None:\n                    _check_coverage(scan, each, kind, length)\n',
        "",
        ("tests/test_verification.py", "tests/test_media.py"),
    ),
    Mutant(
        "4: the last group of pictures is not decoded",
        "renderspec/media.py",
        "            _check_tail_decodes(container, stream, scan)\n",
        "",
        ("tests/test_media.py",),
    ),
    Mutant(
        "14: string and list multiplication are not bounded before they run",
        "renderspec/core/sandbox.py",
        "        _check_binop(operator, left, right, self.cap)\n",
        "",
        ("tests/core/test_limits.py",),
    ),
    Mutant(
        "14: loop iterations are not counted",
        "renderspec/core/sandbox.py",
        "        node.iter = _hook(_COUNTED, node.iter)\n",
        "",
        ("tests/core/test_limits.py",),
    ),
    Mutant(
        "14: a shot's matrix may make any number of shots",
        "renderspec/core/expansion.py",
        "        if count > self.limits.max_matrix:\n",
        "        if False:\n",
        ("tests/core/test_limits.py",),
    ),
    Mutant(
        "uses: a name two used files define is taken from the first, silently",
        "renderspec/core/expansion.py",
        "                if (present.spec, present.path) == (defined.spec, defined.path):\n",
        "                if True:\n",
        ("tests/core/test_uses.py",),
    ),
    Mutant(
        "voices per shot: a shot's own voice file is never checked",
        "renderspec/core/planning.py",
        "    if item.voice is None or item.voice_origin is None or rule is None:\n",
        "    if True:\n",
        ("tests/core/test_media_voices.py",),
    ),
    Mutant(
        "takes: take 1 gets a seed of its own too (adding takes re-renders the shot)",
        "renderspec/core/expansion.py",
        "            if number > 1 and not self.ids_only:\n",
        "            if not self.ids_only:\n",
        ("tests/core/test_takes.py",),
    ),
    Mutant(
        "continuity: a still without frame = ... is taken as the whole render",
        "renderspec/core/expansion.py",
        '            return "last"\n',
        "            return None\n",
        ("tests/core/test_continuity.py",),
    ),
    Mutant(
        "5: plan does not compare a cache object's size with its record",
        "renderspec/store.py",
        '            return os.stat(f"{base}/video.mp4").st_size == size and os.path.isfile(f"{base}/meta.json")\n',
        '            return os.path.isfile(f"{base}/meta.json")\n',
        ("tests/test_integrity.py::test_plan_notices_a_cache_object_of_the_wrong_size_and_build_renders_it_again",),
    ),
    Mutant(
        "5: build does not re-hash an object before materialising it",
        "renderspec/sharing.py",
        "        elif (problem := store.check(shot.key)) is not None:\n",
        "        elif (problem := None) is not None:\n",
        ("tests/test_integrity.py::test_build_rehashes_an_object_before_it_materialises_it",),
    ),
    Mutant(
        "5: renders are hard links whoever runs the build",
        "renderspec/outputs.py",
        "            if os.access(temporary, os.W_OK):  # root, or modes not enforced: a link would expose the cache\n",
        "            if False:\n",
        ("tests/test_integrity.py::test_cache_objects_are_read_only_and_an_edit_in_renders_never_reaches_them",),
    ),
    Mutant(
        "5: cache objects stay writable",
        "renderspec/store.py",
        "            os.chmod(staged, READ_ONLY)\n",
        "",
        (
            "tests/test_workspace.py",
            "tests/test_integrity.py::test_cache_objects_are_read_only_and_an_edit_in_renders_never_reaches_them",
        ),
    ),
    Mutant(
        "5: a render that differs from the cache is trusted",
        "renderspec/outputs.py",
        '    return "hashed" if expected and file_sha256(path) in expected else None\n',
        '    return "hashed"\n',
        ("tests/test_integrity.py::test_cache_objects_are_read_only_and_an_edit_in_renders_never_reaches_them",),
    ),
    Mutant(
        "6: the journal's debris is not swept",
        "renderspec/journal.py",
        '        return remove_debris(self.folder, f".*{TEMP_SUFFIX}")\n',
        "        return 0\n",
        ("tests/test_integrity.py::test_what_killed_builds_left_half_written_is_swept",),
    ),
    Mutant(
        "7: a journal record's key is not checked",
        "renderspec/journal.py",
        '        if raw.get("key", key) != key:\n',
        "        if False:\n",
        ("tests/test_untrusted.py::test_journal_keys_that_are_paths_touch_nothing_outside_the_project",),
    ),
    Mutant(
        "8: fragments and used spec files are checked by their written path only, not resolved",
        "renderspec/loading.py",
        "    if not resolved.is_relative_to(real_root):\n",
        "    if False:\n",
        (
            "tests/test_untrusted.py::test_a_fragment_through_a_symlink_out_of_the_project_is_refused",
            "tests/test_untrusted.py::test_a_shared_spec_file_through_a_symlink_out_of_the_project_is_refused",
        ),
    ),
    Mutant(
        "8: references outside the project are read",
        "renderspec/assets.py",
        "        if any(resolved.is_relative_to(folder) for folder in self._inside):\n",
        "        if True:\n",
        ("tests/test_untrusted.py::test_a_reference_outside_the_project_is_refused_unless_its_folder_is_allowed",),
    ),
    Mutant(
        "9: clean removes every mp4 in the renders folder",
        "renderspec/housekeeping.py",
        "        if made_by_renderspec(path, rel, index, manifest, objects):\n",
        "        if True:\n",
        ("tests/test_untrusted.py::test_clean_removes_only_renders_renderspec_made",),
    ),
    Mutant(
        "10: the lock's shape is not validated",
        "renderspec/manifest.py",
        "        return _Lock.model_validate(data)\n",
        "        return _Lock.model_construct(**data)\n",
        ("tests/test_untrusted.py::test_a_damaged_lock_is_one_clear_error",),
    ),
    # -- the lock merges ------------------------------------------------------------------------------
    Mutant(
        "the lock's task ids kept apart in a [tasks] table (adjacent lines: re-renders conflict)",
        "renderspec/manifest.py",
        '    return HEADER + tomli_w.dumps({"version": LOCK_VERSION, "shots": shots})\n',
        '    tasks = {shot_id: shots[shot_id].pop("task_id") for shot_id in shots if "task_id" in shots[shot_id]}\n'
        '    return HEADER + tomli_w.dumps({"version": LOCK_VERSION, "shots": shots, "tasks": tasks})\n',
        ("tests/test_lock_merge.py::test_locks_of_branches_that_render_different_shots_merge_cleanly",),
    ),
    Mutant(
        "the lock's volatile fields end each shot's table",
        "renderspec/manifest.py",
        'FIELDS = ("spec", "model", "duration", "resolution", "ratio", *VOLATILE, "output")\n',
        'FIELDS = ("spec", "model", "duration", "resolution", "ratio", "output", *VOLATILE)\n',
        ("tests/test_lock_merge.py::test_dropping_the_last_shot_merges_with_a_re_render_of_the_one_before",),
    ),
    Mutant(
        "10: a journal record's times are trusted",
        "renderspec/journal.py",
        "            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):\n                fields[name] = float(value)\n",
        "            if True:\n                fields[name] = value\n",
        ("tests/test_untrusted.py::test_damaged_journal_records_are_reported_and_the_build_goes_on",),
    ),
    Mutant(
        "11: API answers are read whole, however large",
        "renderspec/providers/http.py",
        "                if len(body) > MAX_ANSWER:\n",
        "                if False:\n",
        ("tests/test_untrusted.py::test_a_bad_answer_fails_the_shot_and_the_paid_task_stays_journaled",),
    ),
    Mutant(
        "11: a create's task id is journaled without a check",
        "renderspec/providers/dashscope.py",
        "    if not is_task_id(task_id):\n",
        "    if False:\n",
        ("tests/test_untrusted.py::test_a_create_answer_with_an_unusable_task_id_is_never_journaled",),
    ),
    Mutant(
        "12: an API key that cannot travel in a header is sent anyway",
        "renderspec/providers/factory.py",
        "    if not is_header_safe(value):\n",
        "    if False:\n",
        ("tests/test_untrusted.py::test_an_api_key_that_cannot_travel_in_a_header_is_named",),
    ),
    Mutant(
        "13: a failed write is not translated (no file named)",
        "renderspec/fsutil.py",
        "        raise StorageError(error, path) from error\n",
        "        raise\n",
        ("tests/test_untrusted.py::test_an_atomic_write_that_fails_keeps_the_old_content_and_no_temporary_file",),
    ),
    # -- the remote cache ---------------------------------------------------------------------------
    Mutant(
        "a fetched remote video is not checked against its record's sha256",
        "renderspec/remote/tier.py",
        '            if file_sha256(staging) != meta["video_sha256"]:\n',
        "            if False:\n",
        (
            "tests/remote/test_tier.py",
            "tests/remote/test_flow.py::test_a_damaged_remote_entry_is_reported_once_and_never_materialised",
        ),
    ),
    Mutant(
        "a fetched record's payload is not hashed against its key",
        "renderspec/remote/tier.py",
        "        if not hashes:\n",
        "        if False:\n",
        ("tests/remote/test_tier.py",),
    ),
    Mutant(
        "signatures are not checked by readers",
        "renderspec/remote/tier.py",
        "        if self.signing_key is not None:\n            signature = meta.get(SIGNATURE)\n",
        "        if False:\n            signature = meta.get(SIGNATURE)\n",
        (
            "tests/remote/test_tier.py",
            "tests/remote/test_flow.py::test_signed_entries_are_accepted_only_with_the_same_key",
        ),
    ),
    Mutant(
        "a push writes the meta before the video (a cut upload would look whole)",
        "renderspec/remote/tier.py",
        "            self.backend.upload(video_path(entry.key), entry.video)\n            self.backend.write(meta_path(entry.key), data)\n",
        "            self.backend.write(meta_path(entry.key), data)\n            self.backend.upload(video_path(entry.key), entry.video)\n",
        ("tests/remote/test_tier.py",),
    ),
    Mutant(
        "the spend guard disabled",
        "renderspec/build.py",
        '        if missing and settings.provider != "local" and not args.rerender_missing:\n',
        "        if False:\n",
        ("tests/remote/test_flow.py::test_the_spend_guard_refuses_to_pay_again_for_what_the_lock_says_was_paid",),
    ),
    Mutant(
        "renders are not pushed as they are committed",
        "renderspec/build.py",
        "    if remote is None or remote.read_only:\n",
        "    if True:\n",
        ("tests/remote/test_flow.py::test_a_fresh_clone_fetches_every_shot_and_pays_for_none",),
    ),
    Mutant(
        "a read-only remote is written to",
        "renderspec/remote/tier.py",
        "        return not self.read_only and not self.offline\n",
        "        return not self.offline\n",
        ("tests/remote/test_tier.py", "tests/remote/test_flow.py::test_a_read_only_clone_writes_nothing_to_the_remote"),
    ),
    # -- claims ---------------------------------------------------------------------------------------
    Mutant(
        "a live claim of another build is ignored (both pay)",
        "renderspec/remote/claims.py",
        "        return now < self.expires\n",
        "        return False\n",
        ("tests/remote/test_claims_flow.py::test_two_clones_building_at_once_pay_once_per_shot",),
    ),
    Mutant(
        "a claim taken after another build finished the shot does not look at the remote first (pays again)",
        "renderspec/coordination.py",
        "                if outcome.inherited_task is None:\n",
        "                if False:\n",
        ("tests/remote/test_claims_flow.py::test_builds_with_few_slots_never_pay_for_what_another_finished_meanwhile",),
    ),
    Mutant(
        "an expired claim's task is not collected (the taker pays again)",
        "renderspec/remote/claims.py",
        "                return Claim(key, new, replace(mine, task_id=inherited), inherited_task=inherited)\n",
        "                return Claim(key, new, replace(mine, task_id=inherited), inherited_task=None)\n",
        (
            "tests/remote/test_claims.py",
            "tests/remote/test_claims_flow.py::test_a_killed_builds_claims_are_taken_over_and_its_tasks_collected",
        ),
    ),
    # -- CI controls: shards and the budget ----------------------------------------------------------
    Mutant(
        "shards chosen by position in the plan (an added shot moves the others)",
        "renderspec/core/shards.py",
        "    for shot in listed:\n        (mine if shard.owns(groups[shot.id]) else others).append(shot)\n",
        "    for position, shot in enumerate(listed):\n"
        "        (mine if position % shard.count == shard.index - 1 else others).append(shot)\n",
        ("tests/test_ci_controls.py::test_a_shards_share_does_not_move_when_an_unrelated_shot_is_added",),
    ),
    Mutant(
        "the running budget checks what was spent, not what this create would add",
        "renderspec/budget.py",
        "        if not self.exhausted and cost is not None and self.committed + cost <= self.limit + 1e-9:\n",
        "        if not self.exhausted and cost is not None and self.committed <= self.limit + 1e-9:\n",
        ("tests/test_ci_controls.py::test_the_build_stops_submitting_at_the_budget_and_lets_in_flight_tasks_finish",),
    ),
    Mutant(
        "a build over its budget is not refused before it starts",
        "renderspec/budget.py",
        "    if found.total > limit + 1e-9:\n",
        "    if False:\n",
        ("tests/test_ci_controls.py::test_a_budget_below_the_estimate_makes_no_create",),
    ),
    # -- the lock merge driver and the pull-request comment -----------------------------------------
    Mutant(
        "the merge driver does not see two different new keys as a conflict",
        "renderspec/lockmerge.py",
        "                merge.conflicts.append(Conflict(shot, old, mine, other))\n",
        "                pass\n",
        ("tests/test_merge_driver.py",),
    ),
    Mutant(
        "table cells of the pull-request comment are not escaped",
        "renderspec/markdown.py",
        '    return _MARKDOWN_PUNCTUATION.sub(r"\\\\\\1", html.escape(flat, quote=False))\n',
        "    return flat\n",
        ("tests/test_markdown.py",),
    ),
    Mutant(
        "explain: renders do not note the fragments they include",
        "renderspec/core/templating.py",
        "            self.read.add(template.filename)\n",
        "            pass\n",
        ("tests/test_explain.py", "tests/core/test_explanation.py"),
    ),
    Mutant(
        "explain: the previous request is not looked for on the remote",
        "renderspec/project.py",
        "            records = remote.records(asked.values()) if asked else {}\n",
        "            records = {}\n",
        ("tests/test_explain.py",),
    ),
    # -- issue 10: takes and continuity ------------------------------------------------------------
    Mutant(
        "the still sent downstream is the upstream's first frame, not its last",
        "renderspec/media.py",
        '        elif at == "last":\n            target = math.inf\n',
        '        elif at == "last":\n            target = 0.0\n',
        ("tests/test_continuity.py",),
    ),
    Mutant(
        "a dependent's key ignores its upstream render (an upstream edit keeps the old dependent)",
        "renderspec/core/keys.py",
        '        return {"sha256": ref.sha256} if ref.frame is None else {"frame_of": ref.sha256, "at": ref.frame}\n',
        '        return {"render_of": ref.shot, "frame": ref.frame}\n',
        ("tests/test_continuity.py",),
    ),
    Mutant(
        "a failed upstream does not skip its dependents",
        "renderspec/executor.py",
        "            if before is None or before.outcome not in (Outcome.RENDERED, Outcome.CACHED):\n",
        "            if False:\n",
        ("tests/test_continuity.py",),
    ),
    Mutant(
        "build --shot does not pull in what the shot waits on",
        "renderspec/build.py",
        "    stack = [upstream for shot in chosen for upstream in shot.waiting_on]\n",
        "    stack: list[str] = []\n",
        ("tests/test_continuity.py",),
    ),
    Mutant(
        "a take's seed is the shot's seed plus its number (take 1 no longer the shot as written)",
        "renderspec/core/expansion.py",
        "    return (seed + take - 1) % SEED_MODULUS\n",
        "    return (seed + take) % SEED_MODULUS\n",
        ("tests/test_takes.py",),
    ),
    Mutant(
        "the pick is not materialised as renders/<shot>.mp4",
        "renderspec/outputs.py",
        "    return (shot.id, shot.take_of) if shot.take_of is not None and shot.picked else (shot.id,)\n",
        "    return (shot.id,)\n",
        ("tests/test_takes.py",),
    ),
    Mutant(
        "the review page writes prompts unescaped",
        "renderspec/review.py",
        "    parts.append(_e(prompt[last:]))\n",
        "    parts.append(prompt[last:])\n",
        ("tests/test_review.py",),
    ),
    Mutant(
        "the review page plays a render of other inputs (the lock's key is not compared)",
        "renderspec/review.py",
        "            or (key is not None and entry.key != key)\n",
        "",
        ("tests/test_review.py", "tests/test_review_browser.py"),
    ),
    # -- cuts (issue 11) ----------------------------------------------------------------------------
    Mutant(
        "a cut's copied video shifted by a frame after its first shot",
        "renderspec/cutting.py",
        "            shift = frame * item.ticks - item.first_pts\n",
        "            shift = (frame + (1 if frame else 0)) * item.ticks - item.first_pts\n",
        ("tests/test_cut_video.py",),
    ),
    Mutant(
        "a cut's re-encoded entries ignore their `in`",
        "renderspec/cutting.py",
        "            moment = start + index * step + 1e-3",
        "            moment = index * step + 1e-3",
        ("tests/test_cut_video.py",),
    ),
    Mutant(
        "an unchanged cut is encoded again",
        "renderspec/cuts.py",
        "        return record if (stat.st_size, stat.st_mtime_ns, stat.st_ino) == record.file else None\n",
        "        return None\n",
        ("tests/test_cut.py",),
    ),
    Mutant(
        "a cut's key ignores the trims",
        "renderspec/core/cuts.py",
        "        entries.append({**shown, **item.entry.trims})\n",
        "        entries.append(shown)\n",
        ("tests/core/test_cuts.py",),
    ),
)


def scratch_copy() -> Path:
    """The working tree as it is (tracked and untracked, not ignored) in a temporary folder."""
    target = Path(tempfile.mkdtemp(prefix="renderspec-mutants-"))
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(mutant: Mutant, copy: Path) -> tuple[bool, float]:
    """(killed, seconds): applies the mutant, runs its tests, restores the file."""
    path = copy / mutant.path
    original = path.read_text()
    if original.count(mutant.old) != 1:
        raise SystemExit(f"mutant {mutant.name!r}: its edit does not apply exactly once to {mutant.path}")
    path.write_text(original.replace(mutant.old, mutant.new))
    started = time.monotonic()
    try:
        env = {**os.environ, "PYTHONPATH": str(copy), "HYPOTHESIS_PROFILE": "ci"}  # child processes see the mutant too
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
        )
        killed = result.returncode != 0
    except subprocess.TimeoutExpired:
        killed = True  # a guard removed made a test run away (a loop no longer bounded): caught, if slowly
    finally:
        path.write_text(original)
    return killed, time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(word.lower() in m.name.lower() for word in argv)]
    copy = scratch_copy()
    survivors = 0
    try:
        print(f"{'mutant':<78} {'result':<9} seconds")
        for mutant in chosen:
            killed, seconds = run(mutant, copy)
            survivors += not killed
            print(f"{mutant.name[:78]:<78} {'killed' if killed else 'SURVIVED':<9} {seconds:7.1f}", flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
