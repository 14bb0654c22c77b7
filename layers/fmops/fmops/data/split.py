"""Deterministic, exact, label-stratified train/validation/test assignment."""

from __future__ import annotations

import math
import random
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


def assign_splits(
    label_ids: Sequence[int], label_names: Sequence[str], ratios: Sequence[float], seed: int
) -> bytearray:
    """The split index (0 train, 1 validation, 2 test) of every record, by record index.

    Records of each label (labels in name order) are shuffled with ``random.Random(seed)`` and laid end
    to end; walking that order, each record goes to the split furthest below its share so far. The
    totals are exactly ``split_counts``, and every label is spread over the splits in proportion.
    """
    total = len(label_ids)
    targets = split_counts(total, ratios)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(label_ids):
        groups.setdefault(label, []).append(index)
    rng = random.Random(seed)
    order: list[int] = []
    for label in sorted(groups, key=lambda lab: label_names[lab]):
        members = groups[label]
        rng.shuffle(members)
        order.extend(members)
    result = bytearray(total)
    assigned = [0] * len(targets)
    for position, index in enumerate(order):
        best = -1
        best_deficit = -math.inf
        for split, target in enumerate(targets):
            if assigned[split] >= target:
                continue
            deficit = target * (position + 1) / total - assigned[split]
            if deficit > best_deficit:
                best, best_deficit = split, deficit
        result[index] = best
        assigned[best] += 1
    return result
