"""A change between two arms of runs, with both noise sources: test items and training seeds.

Model (docs/transfer.md): run k of arm a scores ``Y_ak`` on the common test set. Its deviation from the arm's
expectation has a *seed* part (which model training produced) and an *item* part (which test items were drawn).
The change ``d = (-1)^l (mean_k U_k - mean_k S_k)`` then has

    Var(d) = V_items + s2_S / K_S + s2_U / K_U

- ``s2_a``, the sample variance of arm a's per-seed scores on the fixed test set, estimates everything that moves
  between training seeds (a seed shifting the whole score, and a seed getting other items right);
- ``V_items`` is the test-set part of the *expected* change (items on which unified training helps or hurts):
  the paired item bootstrap of ``d`` minus what of it the seeds already explain. Each arm's item-level seed
  noise is the bootstrap variance of its within-arm contrasts ``Y_ak - mean_k Y_ak`` (constant seed shifts cancel
  there), divided by ``K_a - 1``. Subtracting it avoids counting the seed-by-item noise twice, which would make a
  study with few seeds needlessly blind.

Intervals and tests are Student t with Welch-Satterthwaite degrees of freedom: each seed term has ``K_a - 1``, the
item term ``min(n_clusters, B) - 1``. Small K gives few degrees of freedom and wide intervals, as it must.

Where an arm has one seed, its spread cannot be measured: with K >= 2 in the other arm, that arm's spread is applied
to both (the same recipe family is assumed to be about as seed-sensitive); with one seed in both arms, only a
training-noise scale the user supplies (``assumed_sd``) lets a verdict be drawn, and otherwise the interval covers
test items only and the verdict is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# How the training-noise part of a change was obtained.
MEASURED = "measured"  # both arms have >= 2 seeds (Welch)
BORROWED = "borrowed"  # one arm has >= 2 seeds; its spread is applied to both arms
ASSUMED = "assumed"  # one seed per arm; the user supplied the seed-to-seed standard deviation
UNMEASURED = "unmeasured"  # one seed per arm and nothing supplied: test-set noise only, no verdict

POWER = 0.8  # the power of the smallest detectable change


def _stats():  # type: ignore[no-untyped-def]
    """scipy.stats, imported on first use: scipy is in the ``reports`` extra, and the CLI imports this module."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Change:
    """A change with its standard error split by source, Satterthwaite degrees of freedom and how seeds entered."""

    estimate: float
    v_items: float  # test-item component of the variance
    seed_terms: tuple[tuple[float, float], ...]  # training-seed components of the variance, each (value, df)
    df_items: float
    noise: str  # MEASURED | BORROWED | ASSUMED | UNMEASURED
    noise_detail: str
    # ``seed_terms`` split by arm, each (value, df): the single-task arm's part and the unified arm's, which one
    # unified model shares across tasks (combine).
    single_seed: tuple[float, float] = (0.0, math.inf)
    unified_seed: tuple[float, float] = (0.0, math.inf)

    @property
    def v_seeds(self) -> float:
        return sum(v for v, _ in self.seed_terms)

    @property
    def se(self) -> float:
        return math.sqrt(self.v_items + self.v_seeds)

    @property
    def df(self) -> float:
        return _satterthwaite([(self.v_items, self.df_items), *self.seed_terms])

    @property
    def verdict_possible(self) -> bool:
        return self.noise != UNMEASURED

    def interval(self, confidence: float) -> tuple[float, float]:
        half = _t_quantile(0.5 + confidence / 2.0, self.df) * self.se
        return (self.estimate - half, self.estimate + half)

    def p_value(self) -> float:
        """Two-sided t test of "no change"."""
        if self.se == 0.0:
            return 1.0 if self.estimate == 0.0 else 0.0
        return float(2.0 * _stats().t.sf(abs(self.estimate) / self.se, self.df))

    def p_equivalent(self, margin: float) -> float:
        """TOST (Schuirmann 1987): the larger of the two one-sided p-values of |change| >= margin."""
        if margin <= 0.0 or math.isnan(margin):
            return 1.0
        if self.se == 0.0:
            return 0.0 if abs(self.estimate) < margin else 1.0
        p_low = _stats().t.sf((self.estimate + margin) / self.se, self.df)
        p_high = _stats().t.cdf((self.estimate - margin) / self.se, self.df)
        return float(max(p_low, p_high))

    def detectable(self, alpha: float, power: float = POWER) -> float:
        """The smallest true change a two-sided test at ``alpha`` finds with probability ``power``."""
        return float((_t_quantile(1.0 - alpha / 2.0, self.df) + _t_quantile(power, self.df)) * self.se)


def _t_quantile(q: float, df: float) -> float:
    return float(_stats().norm.ppf(q) if math.isinf(df) else _stats().t.ppf(q, df))


def _satterthwaite(terms: list[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance terms ``(value, df)``."""
    total = sum(v for v, _ in terms)
    denominator = sum(v * v / df for v, df in terms if v > 0 and not math.isinf(df))
    if total <= 0.0 or denominator == 0.0:
        return math.inf
    return total * total / denominator


@dataclass(frozen=True)
class ArmNoise:
    """One arm's per-seed scores and their item-bootstrap replicates (B x K)."""

    values: np.ndarray
    replicates: np.ndarray

    @property
    def k(self) -> int:
        return len(self.values)

    def seed_variance(self) -> float:
        return float(np.var(self.values, ddof=1))

    def item_seed_noise(self) -> float:
        """Variance of one run's score from seed-by-item noise: bootstrap variance of within-arm contrasts."""
        contrasts = self.replicates - self.replicates.mean(axis=1, keepdims=True)
        return float(np.var(contrasts, axis=0, ddof=1).sum() / (self.k - 1))


def estimate_change(
    single: ArmNoise,
    unified: ArmNoise,
    sign: float,
    n_clusters: int,
    assumed_sd: float | None = None,
) -> Change:
    """The change U - S (signed so that positive is better) with both noise sources; see the module docstring."""
    estimate = sign * (float(np.mean(unified.values)) - float(np.mean(single.values))) + 0.0  # + 0.0: no "-0.00"
    # Replicates where the metric is undefined in some run (a class absent from the resample) are left out.
    finite = ~(np.isnan(single.replicates).any(axis=1) | np.isnan(unified.replicates).any(axis=1))
    single = ArmNoise(single.values, single.replicates[finite])
    unified = ArmNoise(unified.values, unified.replicates[finite])
    n_boot = int(finite.sum())
    both = sign * (unified.replicates.mean(axis=1) - single.replicates.mean(axis=1))
    v_change = float(np.var(both, ddof=1)) if n_boot > 1 else 0.0
    inverse = 1.0 / single.k + 1.0 / unified.k
    seed_terms: list[tuple[float, float]]
    measured = [arm for arm in (single, unified) if arm.k >= 2]
    if len(measured) == 2:
        seed_terms = [(arm.seed_variance() / arm.k, arm.k - 1.0) for arm in measured]
        single_seed, unified_seed = seed_terms
        overlap = sum(arm.item_seed_noise() / arm.k for arm in measured)
        noise, detail = MEASURED, f"seed spread measured in both arms ({single.k} + {unified.k} seeds)"
    elif len(measured) == 1:
        (arm,) = measured
        seed_terms = [(arm.seed_variance() * inverse, arm.k - 1.0)]
        single_seed = (arm.seed_variance() / single.k, arm.k - 1.0)
        unified_seed = (arm.seed_variance() / unified.k, arm.k - 1.0)
        overlap = arm.item_seed_noise() * inverse
        which = "single" if arm is single else "unified"
        noise, detail = BORROWED, f"seed spread of the {which} arm ({arm.k} seeds) applied to both arms"
    elif assumed_sd is not None:
        # The supplied spread's item part cannot be told apart: nothing is subtracted (conservative).
        seed_terms = [(assumed_sd * assumed_sd * inverse, math.inf)]
        single_seed = (assumed_sd * assumed_sd / single.k, math.inf)
        unified_seed = (assumed_sd * assumed_sd / unified.k, math.inf)
        overlap = 0.0
        noise, detail = ASSUMED, f"seed-to-seed sd {assumed_sd:g} supplied by the user, applied to both arms"
    else:
        seed_terms, overlap = [], 0.0
        single_seed = unified_seed = (0.0, math.inf)
        noise, detail = UNMEASURED, "one seed per arm: training noise unmeasured, interval covers test items only"
    if any(math.isnan(v) for v, _ in seed_terms):
        raise ValueError("seed variance is NaN: a run has an undefined main metric")
    return Change(
        estimate=estimate,
        v_items=max(0.0, v_change - overlap),
        seed_terms=tuple(seed_terms),
        # The item term is estimated from the clusters, through B replicates: the fewer of the two bounds its df.
        df_items=max(1.0, min(n_clusters, n_boot) - 1.0),
        noise=noise,
        noise_detail=detail,
        single_seed=single_seed,
        unified_seed=unified_seed,
    )


def combine(
    parts: list[tuple[float, Change]], detail: str, unified_measured: tuple[float, float] | None = None
) -> Change:
    """A weighted sum ``sum_i w_i * change_i`` of the tasks' changes, in three terms as the per-seed path has them
    (Satterthwaite over items, single-task seeds, unified seeds):

    - test items: independent across tasks (disjoint items), summed;
    - single-task seeds: independent models, their variances summed; one term with the df of the worst-known task's
      spread (as the per-seed path's single arm, whose df are K - 1 however many tasks it sums);
    - unified seeds: one model for every task, so a lucky seed lifts them all. Measured per seed where the seeds
      line up (``unified_measured``: value, df), else bounded by the largest variance any correlation across tasks
      gives, ``(sum_i |w_i| s_i)^2``, with the smallest of the tasks' unified df.

    Summing every task's seed terms as separate Satterthwaite terms under-covered in simulated A/A studies with two
    unified seeds; tests/test_transfer_calibration.py measures this form."""
    noises = {c.noise for _, c in parts}
    noise = next((n for n in (UNMEASURED, ASSUMED, BORROWED) if n in noises), MEASURED)
    singles = [(w * w * c.single_seed[0], c.single_seed[1]) for w, c in parts if c.single_seed[0] > 0.0]
    if singles:  # one term, as the per-seed path has: the df of the worst-known task's spread
        singles = [(sum(v for v, _ in singles), min(df for _, df in singles))]
    shared = sum(abs(w) * math.sqrt(c.unified_seed[0]) for w, c in parts) ** 2
    unified = [(shared, min(c.unified_seed[1] for _, c in parts))] if shared > 0.0 else []
    if unified_measured is not None:
        unified = [unified_measured] if unified_measured[0] > 0.0 else []
    return Change(
        estimate=sum(w * c.estimate for w, c in parts),
        v_items=sum(w * w * c.v_items for w, c in parts),
        seed_terms=(*singles, *unified),
        df_items=min(c.df_items for _, c in parts),
        noise=noise,
        noise_detail=detail,
    )
