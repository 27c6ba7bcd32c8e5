"""Line up result files item by item, or refuse with a clear error: never a silent mismatch.

Two results can be compared item by item only if they scored the same task (at the same ``task_version``) and split
against the same annotation files (data fingerprint) and hold per-sample stats for exactly the same ids, each id in
the same group and, where the rows record them, with the same prompt and target (``prompt_hash``, ``target_hash``).
Arms of a comparison are checked too: one model configuration per arm, each run given once, not the same run in
both arms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.registry import get_task
from crab_eval.results import RunResult

# Stored metrics and the aggregate of the stored per-sample stats must agree to this (0-100 scale).
METRIC_TOLERANCE = 1e-6
# Run metadata that must agree within an arm: the runs of an arm differ by training seed only.
ARM_IDENTITY = ("model", "variant", "adapter")
# Per-sample hashes that must agree item by item between runs that are paired.
ITEM_HASHES = ("prompt_hash", "target_hash")


def describe(run: RunResult) -> str:
    """A short label for error messages and tables: the predictions file, else task/variant/seed."""
    source = run.provenance.get("result_file") or run.provenance.get("predictions_file")
    if source:
        return str(source)
    parts = [run.task]
    for key in ("model", "variant", "seed"):
        if key in run.run:
            parts.append(f"{key}={run.run[key]}")
    return " ".join(parts)


@dataclass(frozen=True)
class AlignedRuns:
    """Runs of one task and split, rows reordered to one common id order."""

    task: str
    split: str
    data_fingerprint: str
    ids: tuple[str, ...]
    groups: tuple[Any, ...]
    rows: tuple[tuple[Mapping[str, Any], ...], ...]  # rows[k][i] = stats of item ids[i] in run k

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))


def _rows_by_id(run: RunResult, label: str) -> dict[str, Mapping[str, Any]]:
    if not run.samples:
        raise CrabEvalError(
            f"{label}: no per-sample stats (is the .samples.jsonl beside the result?); cannot pair without them"
        )
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in run.samples:
        if "id" not in row:
            raise CrabEvalError(f"{label}: a per-sample row has no 'id'")
        if row["id"] in by_id:
            raise CrabEvalError(f"{label}: sample id {row['id']!r} appears twice in the per-sample stats")
        by_id[row["id"]] = row
    return by_id


def _check_same(
    runs: Sequence[RunResult], labels: Sequence[str], key: str, default: Any, shown: str, what: str, fix: str
) -> None:
    """Every run records the same ``provenance[key]`` (``default`` where it is absent), or one error naming each."""
    seen: dict[str, str] = {}
    for run, label in zip(runs, labels, strict=True):
        seen.setdefault(str(run.provenance.get(key, default)), label)
    if len(seen) > 1:
        found = "; ".join(f"{shown} {value} ({label})" for value, label in seen.items())
        raise CrabEvalError(f"{runs[0].task}: results {what}: {found}; {fix}")


def _check_versions(runs: Sequence[RunResult], labels: Sequence[str]) -> None:
    _check_same(runs, labels, "task_version", None, "version", "scored with different task versions",
                "re-score the predictions with one version, or pass --allow-version-mismatch if you know the change "
                "does not affect these results")  # fmt: skip


def _check_extract(runs: Sequence[RunResult], labels: Sequence[str]) -> None:
    # The extraction tier changes which texts count as answers; results from before tiers existed read "strict".
    _check_same(runs, labels, "extract", "strict", "--extract", "read with different answer-extraction tiers",
                "score every run with the same --extract")  # fmt: skip


def _check_item_hashes(ids: Sequence[str], reference: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                       task: str, label: str, first_label: str) -> None:  # fmt: skip
    for key in ITEM_HASHES:
        for item_id, ref_row, row in zip(ids, reference, rows, strict=True):
            a, b = ref_row.get(key), row.get(key)
            if a is not None and b is not None and a != b:
                why = (
                    "the runs were scored with different prompt templates (predictions from other prompts are "
                    "another experiment)"
                    if key == "prompt_hash"
                    else "the task reads the annotation differently (a change without a version bump)"
                )
                what = "prompt" if key == "prompt_hash" else "target (annotation)"
                raise CrabEvalError(
                    f"{task}: the {what} of item {item_id!r} differs between {label} and {first_label}: {why}"
                )


def align_runs(
    runs: Sequence[RunResult], labels: Sequence[str] | None = None, allow_version_mismatch: bool = False
) -> AlignedRuns:
    """Check that ``runs`` can be paired item by item and return their rows in the first run's id order."""
    if not runs:
        raise CrabEvalError("no results to pair")
    labels = list(labels) if labels is not None else [describe(r) for r in runs]
    first, first_label = runs[0], labels[0]
    fingerprints = []
    for run, label in zip(runs, labels, strict=True):
        fingerprint = run.provenance.get("data_fingerprint")
        if not fingerprint:
            raise CrabEvalError(f"{label}: no data fingerprint in the provenance; cannot check the annotation files")
        fingerprints.append(fingerprint)
        if run.task != first.task:
            raise CrabEvalError(f"cannot pair task {run.task!r} ({label}) with task {first.task!r} ({first_label})")
        if run.split != first.split:
            raise CrabEvalError(
                f"cannot pair {first.task} split {run.split!r} ({label}) with split {first.split!r} ({first_label})"
            )
        if fingerprint != fingerprints[0]:
            raise CrabEvalError(
                f"{first.task}/{first.split}: {label} and {first_label} were scored against different annotation "
                f"files (data fingerprints {fingerprint[:19]}... vs {fingerprints[0][:19]}...)"
            )
    _check_extract(runs, labels)
    if not allow_version_mismatch:
        _check_versions(runs, labels)
    reference = _rows_by_id(first, first_label)
    ids = tuple(reference)
    groups = tuple(reference[i].get("group", i) for i in ids)
    aligned = [tuple(reference[i] for i in ids)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        by_id = _rows_by_id(run, label)
        if by_id.keys() != reference.keys():
            missing = sorted(reference.keys() - by_id.keys())
            extra = sorted(by_id.keys() - reference.keys())
            detail = "; ".join(
                f"{what} {len(found)} ids (e.g. {found[0]!r})"
                for what, found in (("lacks", missing), ("has extra", extra))
                if found
            )
            raise CrabEvalError(
                f"{first.task}/{first.split}: {label} is not on the same items as {first_label}: {detail}"
            )
        rows = tuple(by_id[i] for i in ids)
        for item_id, group, row in zip(ids, groups, rows, strict=True):
            if row.get("group", item_id) != group:
                raise CrabEvalError(
                    f"{first.task}: item {item_id!r} is in group {row.get('group')!r} in {label} "
                    f"but in {group!r} in {first_label}"
                )
        _check_item_hashes(ids, aligned[0], rows, first.task, label, first_label)
        aligned.append(rows)
    return AlignedRuns(first.task, first.split, fingerprints[0], ids, groups, tuple(aligned))


def check_stored_metrics(run: RunResult, recomputed: Mapping[str, float], label: str) -> None:
    """The stored metrics must be the aggregate of the stored stats: otherwise the stats or the task changed."""
    for name, stored in run.metrics.items():
        value = recomputed.get(name)
        if value is None or not math.isclose(float(stored), float(value), rel_tol=0.0, abs_tol=METRIC_TOLERANCE):
            raise CrabEvalError(
                f"{label}: stored {name}={stored} but the per-sample stats aggregate to {value} "
                f"(task {run.task!r} changed since scoring? re-score the predictions)"
            )


def main_metric_of(task_id: str, split: str) -> tuple[str, bool]:
    """(main metric of the split, higher is better) as the registered task declares them."""
    task = get_task(task_id)
    main = task.main_metric_for_split(split)
    return main, task.metric(main).higher_is_better


def _identity(run: RunResult) -> tuple[Any, ...]:
    """The arm-identity metadata of a run; a model name that ends with the run's own seed is read without it."""
    values = [run.run.get(key) for key in ARM_IDENTITY]
    seed = run.run.get("seed")
    if seed is not None and isinstance(values[0], str):
        values[0] = re.sub(rf"[-_.]?seed[-_]?{re.escape(str(seed))}$", "", values[0])
    return tuple(values)


def check_arm(runs: Sequence[RunResult], arm: str) -> None:
    """An arm holds runs of one configuration that differ by training seed, each given once."""
    task = runs[0].task
    seeds = [r.run.get("seed") for r in runs]
    given = [s for s in seeds if s is not None]
    if len(given) != len(set(map(str, given))):
        raise CrabEvalError(f"{task}: the {arm} runs repeat a seed ({seeds}); was a result given twice?")
    by_hash: dict[str, RunResult] = {}
    for run in runs:
        digest = run.provenance.get("predictions_sha256")
        if digest and digest in by_hash:
            raise CrabEvalError(
                f"{task}: {describe(by_hash[digest])} and {describe(run)} in the {arm} arm hold identical predictions "
                "(the same file given twice, or seeds that do not change the model's answers); give each run once"
            )
        if digest:
            by_hash[digest] = run
    identities = {_identity(r): describe(r) for r in runs}
    if len(identities) > 1:
        found = "; ".join(
            ", ".join(f"{k}={v}" for k, v in zip(ARM_IDENTITY, ident, strict=True)) + f" ({label})"
            for ident, label in identities.items()
        )
        raise CrabEvalError(
            f"{task}: the {arm} arm mixes runs of different configurations ({found}); an arm's runs may differ "
            "only by training seed"
        )


def check_arms(single: Sequence[RunResult], unified: Sequence[RunResult]) -> list[str]:
    """Refuse the same run in both arms and swapped arms; returns notes about the task's arms (an A/A comparison is
    named, not refused)."""
    task = single[0].task
    for run in unified:
        digest = run.provenance.get("predictions_sha256")
        ident = (*_identity(run), run.run.get("seed"))
        for other in single:
            same_file = digest is not None and other.provenance.get("predictions_sha256") == digest
            # Named runs only: the same model name and seed (variant, adapter) is the same training run.
            named = ident[0] is not None and ident[-1] is not None
            same_run = named and (*_identity(other), other.run.get("seed")) == ident
            if same_file or same_run:
                what = "predictions" if same_file else "run (model, variant, adapter and seed)"
                raise CrabEvalError(
                    f"{task}: the same {what} in both arms ({describe(other)} and {describe(run)}); "
                    "a run compared with itself shows no transfer by construction"
                )
    variants = {r.run.get("variant") for r in single}, {r.run.get("variant") for r in unified}
    if variants == ({"unified"}, {"single"}):
        raise CrabEvalError(
            f"{task}: the single arm holds unified runs and the unified arm single-task runs: arms swapped?"
        )
    if len(variants[0]) == 1 and variants[0] == variants[1] and None not in variants[0]:
        return [f"both arms are variant {next(iter(variants[0]))!r} (an A/A comparison)"]
    return []
