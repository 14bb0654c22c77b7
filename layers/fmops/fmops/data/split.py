"""Deterministic, exact, stratified and group-aware train/validation/test assignment.

Deterministic on any machine: the order of records within a stratum comes from a keyed BLAKE2b hash of
(seed, record or group index), not from ``random`` (whose algorithms may change between Python versions).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

SPLITS = ("train", "validation", "test")


def split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """Exact record counts per split (largest remainder; ties go to the earlier split)."""
    raw = [r * total for r in ratios]
    counts = [math.floor(x) for x in raw]
    remainder = total - sum(counts)
    order = sorted(range(len(ratios)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[:remainder]:
        counts[i] += 1
    return counts


def _rank(seed: int, index: int) -> bytes:
    return hashlib.blake2b(
        index.to_bytes(8, "little"), digest_size=8, key=seed.to_bytes(8, "little", signed=True)
    ).digest()


def _walk(units: list[tuple[int, int]], targets: list[int], total: int) -> dict[int, int]:
    """Give each unit ``(id, size)``, in order, the split furthest below its share so far."""
    chosen: dict[int, int] = {}
    assigned = [0] * len(targets)
    done = 0
    for unit, size in units:
        done += size
        best, best_deficit = -1, -math.inf
        for split, target in enumerate(targets):
            if target == 0:
                continue
            if assigned[split] + size > target and any(
                assigned[s] + size <= t for s, t in enumerate(targets) if t and s != split
            ):
                continue  # full, and another split still has room for the whole unit
            deficit = target * done / total - assigned[split]
            if deficit > best_deficit:
                best, best_deficit = split, deficit
        chosen[unit] = best
        assigned[best] += size
    return chosen


def assign_splits(
    strata: Sequence[int],
    ratios: Sequence[float],
    seed: int,
    groups: Sequence[int] | None = None,
) -> bytearray:
    """The split index (0 train, 1 validation, 2 test) of every record, by record index.

    ``strata[i]`` is record i's stratum (e.g. its label's rank in sorted label order; all zeros for no
    stratification). Strata are laid end to end, each shuffled by the seeded hash, and the walk gives each
    record the split furthest below its share so far: the totals are exactly ``split_counts`` and each
    stratum is split in proportion (within one record per split).

    With ``groups`` (``groups[i]`` is record i's group id) whole groups are the units: no group is in two
    splits, a group's stratum is that of its first record, and the totals are as close as the group sizes
    allow.
    """
    total = len(strata)
    if total == 0:
        return bytearray()
    targets = split_counts(total, ratios)
    if groups is None:
        by_stratum: dict[int, list[int]] = {}
        for index, stratum in enumerate(strata):
            by_stratum.setdefault(stratum, []).append(index)
        units = [
            (index, 1)
            for stratum in sorted(by_stratum)
            for index in sorted(by_stratum[stratum], key=lambda i: _rank(seed, i))
        ]
        chosen = _walk(units, targets, total)
        return bytearray(chosen[i] for i in range(total))
    sizes: dict[int, int] = {}
    group_stratum: dict[int, int] = {}
    for stratum, group in zip(strata, groups, strict=True):
        sizes[group] = sizes.get(group, 0) + 1
        group_stratum.setdefault(group, stratum)
    ordered = sorted(sizes, key=lambda g: (group_stratum[g], _rank(seed, g)))
    chosen = _walk([(g, sizes[g]) for g in ordered], targets, total)
    return bytearray(chosen[g] for g in groups)
