"""Score one prediction file against one split: the engine behind ``crab-eval score``.

The pieces compose the same way in a notebook: ``split = load_split(get_task("ks"), data, "test")``, then
``read_predictions(path, task, split)`` and ``task.aggregate(score_predictions(task, split, preds))`` give the
numbers ``score`` gives (the split, not the task instance, carries what parsing and checking need).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crab_eval.errors import AnnotationError, CrabEvalError
from crab_eval.predictions import PredictionSet, read_predictions
from crab_eval.provenance import base_provenance, content_hash, data_fingerprint, portable_path
from crab_eval.registry import get_task
from crab_eval.results import RunResult
from crab_eval.tasks.base import Split, Task


def load_split(task: Task, data_dir: str | Path, split: str) -> Split:
    """The split as ``task.load`` reads it, or one user error: an unknown split, a missing folder, no samples."""
    data_dir = Path(data_dir)
    task.check_split(split)
    if not data_dir.is_dir():
        raise AnnotationError("data directory not found", data_dir)
    loaded = task.load(data_dir, split)
    if not loaded:
        raise AnnotationError(f"split {split!r} of task {task.id!r} has no samples", data_dir)
    return loaded


def data_dir_for(data_root: str | Path, task_id: str) -> Path:
    """``DATA_ROOT/<task id>``: the layout ``evaluate`` and ``submit score`` read (a folder or a link per task)."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise AnnotationError("data root not found", data_root)
    folder = data_root / task_id
    if not folder.is_dir():
        hint = ""
        if (data_root / "synth_config.json").is_file():
            hint = (
                "; this is a SynthAV suite, whose folders carry the official release names (AVE_Dataset, LLP, ...): "
                "make a data root of links DATA_ROOT/<task id> -> SUITE/<folder> (docs/evaluate.md)"
            )
        raise AnnotationError(f"data root has no folder {task_id!r} with the task's official files{hint}", data_root)
    return folder


def score_predictions(task: Task, split: Split, preds: PredictionSet) -> list[dict[str, Any]]:
    """Per-sample stats, with a missing or unparsed prediction scored as the task's empty prediction."""
    samples = split.samples
    chosen = [preds.predictions.get(s.id) for s in samples]
    filled = [p if p is not None else task.empty_prediction(s) for s, p in zip(samples, chosen, strict=True)]
    stats = task.score_samples(samples, filled)
    rows = []
    for sample, row in zip(samples, stats, strict=True):
        record: dict[str, Any] = {"id": sample.id, "group": sample.group, "status": preds.status(sample.id)}
        record["pred_hash"] = preds.prediction_hashes.get(sample.id)
        # What the sample asked and what counts as right: pairing refuses two results that differ here
        # (a task changed without a version bump, crab_eval/pairing.py).
        record["prompt_hash"] = content_hash(task.prompt(sample))
        record["target_hash"] = content_hash(sample.target)
        record.update(row)
        rows.append(record)
    return rows


def score(
    task_id: str,
    data_dir: str | Path,
    split: str,
    predictions_path: str | Path,
    allow_extra: bool = False,
    run: Mapping[str, Any] | None = None,
    extract: str = "strict",
    client: dict[str, Any] | None = None,
    loaded: Split | None = None,
) -> RunResult:
    """Score ``predictions_path``; text lines are read with the extraction tier ``extract`` (recorded in the
    provenance, with ``client``: what a conversion from a client's output did, crab_eval/clients). ``loaded`` is
    the split when the caller read it already: a part of the split, as ``crab-eval evaluate --limit`` scores, is
    then the scored set."""
    start = time.perf_counter()
    task = get_task(task_id)
    data_dir = Path(data_dir)
    samples = loaded if loaded is not None else load_split(task, data_dir, split)
    preds = read_predictions(predictions_path, task, samples, allow_extra=allow_extra, extract=extract)
    rows = score_predictions(task, samples, preds)
    metrics = task.aggregate(rows)
    expected = {m.name for m in task.metrics}
    if set(metrics) - expected:
        raise CrabEvalError(f"task {task.id!r} produced undeclared metrics {sorted(set(metrics) - expected)}")
    provenance = base_provenance()
    provenance.update(
        {
            "task_version": task.version,
            "data_dir": portable_path(data_dir),
            "data_fingerprint": data_fingerprint(task.annotation_files(data_dir, split), data_dir),
            "predictions_file": portable_path(predictions_path),
            "predictions_sha256": preds.sha256,
            "extract": extract,
            "wall_time_s": round(time.perf_counter() - start, 4),
        }
    )
    if client is not None:
        provenance["client"] = client
    return RunResult(
        task=task.id,
        split=split,
        metrics={k: float(v) for k, v in metrics.items()},
        main_metric=task.main_metric_for_split(split),
        higher_is_better={m.name: m.higher_is_better for m in task.metrics},
        n_samples=len(samples),
        n_missing=preds.n_missing,
        n_unparsed=preds.n_unparsed,
        n_extra=preds.n_extra,
        n_unparsed_by_extract=dict(preds.unparsed_by_tier),
        provenance=provenance,
        run=dict(run or {}),
        samples=rows,
    )
