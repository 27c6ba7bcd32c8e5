"""Metrics that are functions of column sums of the per-sample stats: the bootstrap's fast path.

A task declares ``additive = Additive(columns, finish)`` when every metric of its ``aggregate`` is a function of sums
over the per-sample rows (counts of right answers, totals per question type...). A bootstrap replicate is then a
weighted sum (the resample's multiplicity of each row times the columns) instead of a call of ``aggregate`` on
gathered rows: one matrix product for a chunk of replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Additive:
    """``columns(rows)`` is an (n_rows x d) array; ``finish(sums)`` maps (R x d) column sums to ``{metric: (R,)}``
    arrays, NaN where ``aggregate`` would leave the metric out.

    The contract: for any resample ``r`` of the rows, ``finish(columns(rows)[r].sum(0))`` equals
    ``aggregate(rows[r])`` — bit for bit when the columns hold integers (counts) and ``finish`` applies the same
    arithmetic in the same order as ``aggregate``. tests/test_bootstrap.py checks every task that declares one.
    """

    columns: Callable[[Sequence[Mapping[str, Any]]], np.ndarray]
    finish: Callable[[np.ndarray], Mapping[str, np.ndarray]]
