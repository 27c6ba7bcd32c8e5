"""Bootstrap machinery: cluster draws, paired replicates through ``aggregate``, intervals, p-values, Holm.

Expected values come from scipy.stats.bootstrap, closed-form standard errors, and hand-worked examples.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from crab_eval.bootstrap import (
    ClusterIndex,
    bootstrap_runs,
    holm,
    percentile_interval,
    take,
    two_sided_p_value,
)


def mean_aggregate(rows):
    return {"acc": 100.0 * float(np.mean([r["x"] for r in rows]))}


def rows_of(values):
    return [{"id": str(i), "x": float(v)} for i, v in enumerate(values)]


def test_item_draws_are_sorted_in_range_and_deterministic() -> None:
    index = ClusterIndex(50)
    a = list(index.draw(np.random.default_rng(3), 250))  # crosses the 100-replicate chunk boundary
    b = list(index.draw(np.random.default_rng(3), 250))
    assert len(a) == 250
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(len(x) == 50 and x.min() >= 0 and x.max() < 50 and np.all(np.diff(x) >= 0) for x in a)


def test_cluster_draws_take_whole_clusters() -> None:
    groups = ["v0"] * 3 + ["v1"] + ["v2"] * 5 + ["v3"] * 2  # 11 items, 4 clusters of unequal size
    members = {g: [i for i, x in enumerate(groups) if x == g] for g in set(groups)}
    index = ClusterIndex(len(groups), groups)
    assert index.n_clusters == 4
    for draw in index.draw(np.random.default_rng(0), 200):
        counts = Counter(draw.tolist())
        times = {g: {counts.get(i, 0) for i in m} for g, m in members.items()}
        # Every member of a cluster is drawn the same number of times, and 4 clusters are drawn in all.
        assert all(len(t) == 1 for t in times.values())
        assert sum(next(iter(t)) for t in times.values()) == 4


def test_groups_all_distinct_is_the_item_bootstrap() -> None:
    index = ClusterIndex(30, [f"g{i}" for i in range(30)])
    plain = ClusterIndex(30)
    for x, y in zip(index.draw(np.random.default_rng(5), 20), plain.draw(np.random.default_rng(5), 20), strict=True):
        assert np.array_equal(x, y)


def test_replicates_are_the_aggregate_of_the_shared_resample_for_any_metric() -> None:
    # A non-mean metric (median of a ratio of columns) must go through the task's aggregate, same draw for both runs.
    def median_aggregate(rows):
        return {"med": float(np.median([r["a"] / r["b"] for r in rows])), "n": float(len(rows))}

    rng = np.random.default_rng(1)
    run_a = [{"id": str(i), "a": float(rng.random()), "b": 1.0 + i % 3} for i in range(40)]
    run_b = [{"id": str(i), "a": float(rng.random()), "b": 2.0} for i in range(40)]
    groups = [i // 4 for i in range(40)]
    boot = bootstrap_runs([run_a, run_b], median_aggregate, np.random.default_rng(9), 30, groups)
    assert boot.metrics == ("med", "n")
    assert boot.n_clusters == 10
    draws = ClusterIndex(40, groups).draw(np.random.default_rng(9), 30)
    for b, idx in enumerate(draws):
        assert boot.replicates[b, 0, 0] == median_aggregate(take(run_a, idx))["med"]
        assert boot.replicates[b, 1, 0] == median_aggregate(take(run_b, idx))["med"]
        assert boot.replicates[b, 0, 1] == boot.replicates[b, 1, 1] == len(idx)
    assert boot.point[0, 0] == median_aggregate(run_a)["med"]


def test_metric_missing_from_a_replicate_is_nan_and_ignored_by_the_interval() -> None:
    def sometimes(rows):
        out = {"acc": 100.0 * float(np.mean([r["x"] for r in rows]))}
        if any(r["id"] == "0" for r in rows):
            out["rare"] = 1.0
        return out

    boot = bootstrap_runs([rows_of(np.arange(20) % 2)], sometimes, np.random.default_rng(0), 200)
    _, reps = boot.metric("rare")
    assert np.isnan(reps).any() and (reps == 1.0).any()
    assert percentile_interval(reps[:, 0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in percentile_interval(np.full(5, np.nan)))


def test_mean_interval_matches_scipy_bootstrap() -> None:
    rng = np.random.default_rng(42)
    x = (rng.random(400) < 0.7).astype(float)
    boot = bootstrap_runs([rows_of(x)], mean_aggregate, np.random.default_rng(0), 4000)
    ours = percentile_interval(boot.replicates[:, 0, 0])
    ref = stats.bootstrap(
        (100.0 * x,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95, random_state=1
    ).confidence_interval
    # Standard error is 100 * sqrt(.21 / 400) = 2.29 points; two Monte Carlo runs of 4000 agree to ~0.1 SE.
    assert ours[0] == pytest.approx(ref.low, abs=0.35)
    assert ours[1] == pytest.approx(ref.high, abs=0.35)


def test_paired_difference_interval_matches_scipy_paired_bootstrap() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.2, 0.9, 500)
    x = (rng.random(500) < p).astype(float)
    y = (rng.random(500) < np.clip(p + 0.05, 0, 1)).astype(float)
    boot = bootstrap_runs([rows_of(x), rows_of(y)], mean_aggregate, np.random.default_rng(0), 4000)
    _, reps = boot.metric("acc")
    ours = percentile_interval(reps[:, 1] - reps[:, 0])
    ref = stats.bootstrap(
        (100.0 * x, 100.0 * y),
        lambda a, b: np.mean(b) - np.mean(a),
        paired=True,
        n_resamples=4000,
        method="percentile",
        random_state=2,
    ).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.4)
    assert ours[1] == pytest.approx(ref.high, abs=0.4)


def test_interval_coverage_is_nominal() -> None:
    # 150 data sets of n=150 from Bernoulli(0.6): the 95% interval should cover 60 about 95% of the time.
    rng = np.random.default_rng(2024)
    covered = 0
    for _ in range(150):
        x = (rng.random(150) < 0.6).astype(float)
        boot = bootstrap_runs([rows_of(x)], mean_aggregate, rng, 300)
        low, high = percentile_interval(boot.replicates[:, 0, 0])
        covered += low <= 60.0 <= high
    assert 0.89 <= covered / 150 <= 0.99


def test_cluster_bootstrap_spread_matches_cluster_level_standard_error() -> None:
    # 80 clusters of 5 identical items: the honest SE of the mean is that of 80 cluster means, not of 400 items.
    rng = np.random.default_rng(11)
    cluster_values = (rng.random(80) < 0.5).astype(float)
    x = np.repeat(cluster_values, 5)
    groups = np.repeat(np.arange(80), 5).tolist()
    clustered = bootstrap_runs([rows_of(x)], mean_aggregate, np.random.default_rng(0), 2000, groups)
    items = bootstrap_runs([rows_of(x)], mean_aggregate, np.random.default_rng(0), 2000)
    se_cluster = 100.0 * np.std(cluster_values) / math.sqrt(80)  # plug-in SE of a mean of 80 equal-size clusters
    se_item = 100.0 * np.std(x) / math.sqrt(400)
    assert np.std(clustered.replicates[:, 0, 0]) == pytest.approx(se_cluster, rel=0.08)
    assert np.std(items.replicates[:, 0, 0]) == pytest.approx(se_item, rel=0.08)


def test_item_weights_count_each_item_in_each_resample() -> None:
    groups = ["v0"] * 3 + ["v1"] + ["v2"] * 5 + ["v3"] * 2
    index = ClusterIndex(len(groups), groups)
    draws = list(index.draw(np.random.default_rng(4), 250))
    weights = np.concatenate([index.item_weights(p) for p in index.draw_picks(np.random.default_rng(4), 250)])
    # Counted from the gathered index arrays of the aggregate path, by hand.
    expected = np.array([np.bincount(d, minlength=len(groups)) for d in draws], dtype=np.float64)
    assert weights.shape == (250, len(groups)) and np.array_equal(weights, expected)


def _additive_cases():
    """Per task with a fast path: rows in its per-sample format (random, with rare categories and edge values)."""
    rng = np.random.default_rng(12)
    qtypes = ["audio_counting", "audio_comparative", "visual_counting", "visual_location", "av_existential",
              "av_counting", "av_location", "av_comparative", "av_temporal", "other"]  # fmt: skip
    # A rare question type: absent from many resamples, so its metric is NaN there on both paths.
    weights = np.array([1.0] * 9 + [0.5]) / 9.5
    from crab_eval.tasks.avqa import TYPE_METRIC

    avqa_types = sorted(TYPE_METRIC.values())
    return {
        "ave": [{"correct": int(rng.integers(0, 11)), "total": 10} for _ in range(40)],
        # The last type is asked once: absent from many resamples (NaN there on both paths).
        "avqa": [
            {"correct": int(rng.random() < 0.5), "qtype": avqa_types[i % (len(avqa_types) - 1)]} for i in range(50)
        ]
        + [{"correct": 0, "qtype": avqa_types[-1]}],
        "synth_ave_swap": [{"correct": int(rng.integers(0, 11)), "total": 10} for _ in range(7)],
        "music_avqa": [
            {"correct": int(rng.random() < 0.6), "qtype": qtypes[i] if i < 10 else str(rng.choice(qtypes, p=weights))}
            for i in range(60)
        ]
        + [{"correct": 1, "qtype": "av_temporal"}],
    }


@pytest.mark.parametrize("task_id", sorted(_additive_cases()))
def test_additive_path_gives_the_same_replicates_bit_for_bit(task_id: str) -> None:
    from crab_eval.registry import get_task

    task = get_task(task_id)
    assert task.additive is not None
    rows = _additive_cases()[task_id]
    other = [{**r, "correct": r["correct"] // 2} for r in rows]
    groups = [f"g{i // 3}" for i in range(len(rows))]
    slow = bootstrap_runs([rows, other], task.aggregate, np.random.default_rng(8), 230, groups)
    fast = bootstrap_runs([rows, other], task.aggregate, np.random.default_rng(8), 230, groups, additive=task.additive)
    assert slow.metrics == fast.metrics and np.array_equal(slow.point, fast.point, equal_nan=True)
    assert np.array_equal(slow.replicates, fast.replicates, equal_nan=True)


def test_two_sided_p_value_by_hand() -> None:
    assert two_sided_p_value(np.zeros(100)) == 1.0  # never differs: no evidence at all
    assert two_sided_p_value(np.ones(9)) == pytest.approx(2 * 1 / 10)  # 0 of 9 at or below 0: 2 (0+1)/(9+1)
    d = np.array([-1.0] * 3 + [1.0] * 96)  # 3 of 99 below: 2 (3+1)/100
    assert two_sided_p_value(d) == pytest.approx(0.08)
    assert two_sided_p_value(-d) == pytest.approx(0.08)
    assert math.isnan(two_sided_p_value(np.array([np.nan])))


def test_holm_by_hand() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    adjusted, divisors = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert divisors.tolist() == [3, 1, 2, 4]
    adjusted, divisors = holm([0.02, math.nan, 0.6])  # NaN is outside the family: m = 2; 0.02*2, max(0.04, 0.6)
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.6)
    assert math.isnan(adjusted[1]) and math.isnan(divisors[1])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ClusterIndex(0)
    with pytest.raises(ValueError):
        ClusterIndex(3, ["a", "b"])
    with pytest.raises(ValueError):
        bootstrap_runs([rows_of([1, 0]), rows_of([1])], mean_aggregate, np.random.default_rng(0), 10)
    with pytest.raises(ValueError):
        bootstrap_runs([rows_of([1, 0])], mean_aggregate, np.random.default_rng(0), 0)


def test_every_task_with_a_fast_path_is_checked_above() -> None:
    from crab_eval.registry import get_task, task_ids

    declared = {
        t
        for t in task_ids()
        if get_task(t).additive is not None and type(get_task(t)).__module__.startswith("crab_eval")
    }
    assert declared and declared <= set(_additive_cases())
