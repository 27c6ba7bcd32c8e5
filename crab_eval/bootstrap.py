"""Bootstrap over per-sample stats: paired and clustered by group.

Every metric gets its interval from one path: resample the rows, call the task's own ``aggregate``. Rows of several
runs scored on the same items are resampled with the *same* indices (a paired bootstrap), so the comparison sees
only the difference between runs, not the luck of the draw of test items twice over.

Index drawing is vectorised (one ``integers`` call for a chunk of replicates, clusters expanded with ``np.repeat``).
Calling ``aggregate`` once per run and replicate is where the time goes; a task whose metrics are functions of
column sums of its per-sample stats declares that (``Additive``), and then every replicate is a weighted sum: the
resample's cluster counts times the columns, one matrix product per chunk, with the very same draws (and, for
integer-valued columns, the very same replicate values) as the ``aggregate`` path.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from crab_eval.additive import Additive

Rows = Sequence[Mapping[str, Any]]
Aggregate = Callable[[Rows], Mapping[str, float]]

DEFAULT_BOOTSTRAP = 1000
_CHUNK = 100  # replicates whose item indices are drawn at once: bounds memory at 100 x n ints


def task_rng(seed: int, task: str) -> np.random.Generator:
    """A task's stream depends on the seed and its id only: adding a task does not move the others' intervals."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(task.encode())]))


class ClusterIndex:
    """Items grouped by cluster (the video where several items share a clip); draws resamples of whole clusters.

    With every item in its own cluster (or ``groups=None``) this is the ordinary item bootstrap.
    """

    def __init__(self, n_items: int, groups: Sequence[Hashable] | None = None):
        if n_items <= 0:
            raise ValueError("cannot bootstrap zero items")
        self.n_items = n_items
        if groups is None:
            self.n_clusters = n_items
            self._singletons = True
            self.cluster_of = np.arange(n_items)
            return
        if len(groups) != n_items:
            raise ValueError(f"{len(groups)} groups for {n_items} items")
        _, inverse, sizes = np.unique(np.asarray(groups, dtype=object), return_inverse=True, return_counts=True)
        self.n_clusters = len(sizes)
        self._singletons = self.n_clusters == n_items
        self.cluster_of = inverse.reshape(-1)  # the cluster of each item
        # order lists item indices cluster by cluster; cluster c occupies order[starts[c] : starts[c] + sizes[c]].
        self._order = np.argsort(inverse, kind="stable")
        self._sizes = sizes
        self._starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))

    def draw_picks(self, rng: np.random.Generator, n_boot: int) -> Iterator[np.ndarray]:
        """Chunks (count x n_clusters) of cluster picks with replacement, ``n_boot`` rows in all.

        Both bootstrap paths consume the random stream through this one generator, so they see the same draws.
        """
        for first in range(0, n_boot, _CHUNK):
            count = min(_CHUNK, n_boot - first)
            yield rng.integers(0, self.n_clusters, size=(count, self.n_clusters))

    def draw(self, rng: np.random.Generator, n_boot: int) -> Iterator[np.ndarray]:
        """``n_boot`` index arrays into the items, each a resample with replacement of clusters."""
        for picks in self.draw_picks(rng, n_boot):
            # Sorted indices keep a resample in dataset order: aggregates are order-free, and sorted input is
            # kinder to the np.unique/argsort inside many of them.
            if self._singletons:
                yield from np.sort(picks, axis=1)
                continue
            for chosen in picks:
                yield np.sort(self._expand(chosen))

    def item_weights(self, picks: np.ndarray) -> np.ndarray:
        """How often each item is in each resample of a chunk of picks: (count x n_items), float64 integers."""
        count = picks.shape[0]
        offsets = (np.arange(count) * self.n_clusters)[:, None]
        counts = np.bincount((picks + offsets).ravel(), minlength=count * self.n_clusters)
        return counts.reshape(count, self.n_clusters)[:, self.cluster_of].astype(np.float64)

    def _expand(self, chosen: np.ndarray) -> np.ndarray:
        lengths = self._sizes[chosen]
        ends = np.cumsum(lengths)
        offsets = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)
        return self._order[np.repeat(self._starts[chosen], lengths) + offsets]


def _gatherer(indices: np.ndarray) -> Callable[[Rows], Sequence[Mapping[str, Any]]]:
    """A function returning the rows at ``indices`` (itemgetter is the fastest pure-Python gather)."""
    if len(indices) == 1:
        only = int(indices[0])
        return lambda rows: [rows[only]]
    return itemgetter(*indices.tolist())  # type: ignore[return-value]


def take(rows: Rows, indices: np.ndarray) -> Sequence[Mapping[str, Any]]:
    """The rows at ``indices``."""
    return _gatherer(indices)(rows)


@dataclass(frozen=True)
class RunBootstrap:
    """Metrics of K aligned runs on the full data (``point``, K x M) and on B shared resamples (B x K x M).

    A metric that ``aggregate`` leaves out of a replicate (a question type absent from the resample) is NaN there.
    """

    metrics: tuple[str, ...]
    point: np.ndarray
    replicates: np.ndarray
    n_clusters: int

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(point of each run, K) and (replicates, B x K) of one metric."""
        j = self.metrics.index(name)
        return self.point[:, j], self.replicates[:, :, j]


def _as_vector(result: Mapping[str, float], metrics: Sequence[str]) -> list[float]:
    return [float(result[m]) if m in result else math.nan for m in metrics]


def bootstrap_runs(
    runs: Sequence[Rows],
    aggregate: Aggregate,
    rng: np.random.Generator,
    n_boot: int = DEFAULT_BOOTSTRAP,
    groups: Sequence[Hashable] | None = None,
    metrics: Sequence[str] | None = None,
    additive: Additive | None = None,
) -> RunBootstrap:
    """Paired (cluster) bootstrap of several runs whose rows are aligned item by item.

    Each replicate draws one resample of clusters and applies it to every run: the runs share the test items, so
    they share the draw. ``metrics`` defaults to every metric ``aggregate`` returns on the first run. With
    ``additive`` the replicates are computed as weighted column sums (same draws, no per-replicate ``aggregate``).
    """
    if not runs:
        raise ValueError("no runs to bootstrap")
    n = len(runs[0])
    if any(len(r) != n for r in runs):
        raise ValueError("runs are not aligned: different numbers of rows")
    if n_boot < 1:
        raise ValueError("the number of bootstrap replicates must be at least 1")
    full = [aggregate(r) for r in runs]
    names = tuple(metrics) if metrics is not None else tuple(full[0])
    point = np.array([_as_vector(f, names) for f in full], dtype=np.float64)
    index = ClusterIndex(n, groups)
    replicates = np.empty((n_boot, len(runs), len(names)), dtype=np.float64)
    if additive is not None:
        _additive_replicates(runs, additive, index, rng, names, replicates)
    else:
        for b, indices in enumerate(index.draw(rng, n_boot)):
            gather = _gatherer(indices)  # built once, applied to every run: the draw is shared
            for k, rows in enumerate(runs):
                replicates[b, k] = _as_vector(aggregate(gather(rows)), names)
    return RunBootstrap(names, point, replicates, index.n_clusters)


def _additive_replicates(
    runs: Sequence[Rows],
    additive: Additive,
    index: ClusterIndex,
    rng: np.random.Generator,
    names: Sequence[str],
    out: np.ndarray,
) -> None:
    """Fill ``out`` (B x K x M) chunk by chunk: item weights of the resamples times each run's columns."""
    columns = [np.asarray(additive.columns(rows), dtype=np.float64) for rows in runs]
    first = 0
    for picks in index.draw_picks(rng, out.shape[0]):
        weights = index.item_weights(picks)
        for k, cols in enumerate(columns):
            finished = additive.finish(weights @ cols)
            for j, name in enumerate(names):
                out[first : first + len(picks), k, j] = finished.get(name, math.nan)
        first += len(picks)


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval; NaN replicates (metric undefined in that resample) are left out."""
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def two_sided_p_value(diffs: np.ndarray) -> float:
    """Bootstrap p-value of "no difference": twice the smaller tail mass at 0, with the +1 correction.

    (count + 1) / (B + 1) keeps p away from 0 (Davison & Hinkley 1997, eq. 4.11); a replicate exactly at 0 counts
    on both sides, so runs that never differ get p = 1.
    """
    finite = diffs[~np.isnan(diffs)]
    if finite.size == 0:
        return math.nan
    below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
    above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def holm(p_values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Holm (1979) step-down adjustment.

    Returns (adjusted p-values, the level at which each hypothesis is tested as a divisor ``m - rank``): the task
    with the i-th smallest p (i from 0) is tested at alpha / (m - i). NaN p-values are not part of the family.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    divisors = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return adjusted, divisors
    order = valid[np.argsort(p[valid], kind="stable")]
    factors = m - np.arange(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * factors))
    divisors[order] = factors
    return adjusted, divisors
