"""Which shots one job of a CI matrix renders: `build --shard K/N`, chosen by content key alone.

A shot belongs to shard `int(key, 16) % N + 1`. The key is a sha256, so the shares are even, and
it depends on nothing but the shot's own request, so adding, editing or removing another shot
never moves this one to another shard; shots that ask for one render (one key) always land
together and are paid for once. Shots linked by renders (continuity) go together, with the first of their first shots. Rendezvous hashing would only help when N itself changes, and
then nothing is lost either: what one layout rendered is in the remote cache for the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from renderspec.core.keys import is_key
from renderspec.core.model import PlannedShot

MAX_SHARDS = 1000  # a CI matrix far beyond any runner count; bounds a typo like 1/10000000000

_Shot = TypeVar("_Shot", bound=PlannedShot)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count`, both counted from 1 as CI matrices count them."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 1 <= self.index <= self.count:
            raise ValueError(f"{self.index}/{self.count}: K/N needs 1 ≤ K ≤ N ≤ {MAX_SHARDS}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        """Whether the render with this content key is this shard's work."""
        if not is_key(key):
            raise ValueError(f"not a content key: {key[:70]!r}")
        return int(key, 16) % self.count == self.index - 1


def parse_shard(text: str) -> Shard:
    """`K/N` as written on the command line; ValueError says what is wrong with it."""
    index, slash, count = text.strip().partition("/")
    if not slash or not index.isdigit() or not count.isdigit():
        raise ValueError(f"{text[:40]!r} is not K/N (e.g. 1/3: the first of three shards)")
    return Shard(int(index), int(count))


def shard_share(shots: Iterable[_Shot], shard: Shard) -> tuple[list[_Shot], list[_Shot]]:
    """(this shard's shots, the other shards' shots), each in the order given.

    Shots linked by renders (continuity) go to one shard: a job can only key a dependent once its
    upstreams are rendered, so every shot of a linked group renders in one job. A chain goes where
    its first shot goes; a group with several first shots (a shot using two independent shots'
    renders) goes where the first of them by key goes.
    """
    listed = list(shots)
    by_id = {shot.id: shot for shot in listed}
    mine: list[_Shot] = []
    others: list[_Shot] = []
    groups = _linked_groups(listed, by_id)
    for shot in listed:
        (mine if shard.owns(groups[shot.id]) else others).append(shot)
    return mine, others


def _linked_groups(listed: list[_Shot], by_id: dict[str, _Shot]) -> dict[str, str]:
    """Each shot's group key: the smallest key among the first shots (no upstream here) of the
    shots linked to it by renders, in either direction."""
    parent = {shot.id: shot.id for shot in listed}

    def find(shot_id: str) -> str:
        while parent[shot_id] != shot_id:
            parent[shot_id] = parent[parent[shot_id]]
            shot_id = parent[shot_id]
        return shot_id

    for shot in listed:
        for upstream in shot.upstream:
            if upstream in by_id:
                parent[find(shot.id)] = find(upstream)
    firsts: dict[str, str] = {}
    members: dict[str, str] = {}
    for shot in listed:
        group = find(shot.id)
        if not any(upstream in by_id for upstream in shot.upstream):
            firsts[group] = min(firsts.get(group, shot.key), shot.key)
        members[group] = min(members.get(group, shot.key), shot.key)
    return {shot.id: firsts.get(find(shot.id), members[find(shot.id)]) for shot in listed}
