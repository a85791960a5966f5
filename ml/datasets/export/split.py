"""The train/val/test split, by slide: every file of a slide lands on one side only.

Cells of one slide share its staining, scanner and patient, so splitting them across sides
would leak; the method's 80/20 splits are therefore drawn over slides.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

SPLITS = ("train", "val", "test")
#: Default shares of train, val and test.
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def split_by_slide(
    keys: Sequence[str], *, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, str]:
    """``{slide key: "train" | "val" | "test"}``, seeded and independent of the input order.

    ``fractions`` are the shares of train, val and test (non-negative, summing to 1). Counts
    are rounded down for val and test, so train gets the remainder, and a lone slide is train.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1):
        raise ValueError("split fractions must be three non-negative shares summing to 1")
    if len(set(keys)) != len(keys):
        raise ValueError("slide keys must be unique")
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val, n_test = math.floor(n * fractions[1]), math.floor(n * fractions[2])
    n_train = n - n_val - n_test
    sides = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return dict(zip(order, sides, strict=True))
