"""``crab-eval evaluate``: run a model over a suite of tasks, score every task, write one summary.

Layout of ``--out DIR``::

    run.json                          the run's settings (model, its arguments, generation, batch size, limit)
    predictions/<task>.jsonl          the task's default split (<task>.<split>.jsonl for another split): the
                                      submission layout, so the folder can be replayed or submitted
    predictions/.partial/<task>.<split>/rank-<r>.jsonl   finished batches of a task still running (shards.py)
    results/<task>.<split>.json       the result (+ .samples.jsonl), as ``crab-eval score`` writes it
    summary.md, summary.csv, summary.json

Resuming: a task whose prediction file exists is not predicted again, and its result is kept if present; a task
that stopped midway runs only the batches its logs lack. A folder written with other settings is refused (use
another ``--out``), so one folder never mixes two configurations. Data are read from ``DATA_ROOT/<task>/``, the
layout ``crab-eval submit score`` reads.

Every result records the model, its arguments, the generation settings and the prompt template (the task's prompt
and the model's input with the sample's instruction replaced by ``{instruction}``) under
``provenance["inference"]``; the run metadata (``model``, ``variant``, ``adapter``, ``seed``) come from the
model's defaults and the user's overrides, so that ``transfer`` and ``compare`` pair runs as they pair scored files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open, read_json, write_json, write_jsonl
from crab_eval.models import load_model
from crab_eval.models.base import Model, Request, generation_settings
from crab_eval.reports.table import Table
from crab_eval.results import RunResult, read_result, write_result
from crab_eval.scoring import data_dir_for, load_split, score
from crab_eval.shards import BatchLog, Processes, Row, assigned, batch_bounds, processes
from crab_eval.tasks.base import EXTRACT_TIERS, Split, Task

RUN_FILE = "run.json"
SETTINGS = ("model", "model_args", "generation", "batch_size", "limit")


@dataclass
class Evaluation:
    """What a run produced: one result per (task, split) in the order asked, and the summary table."""

    out: Path
    results: dict[tuple[str, str], RunResult] = field(default_factory=dict)
    summary: Table | None = None

    def to_frame(self) -> Any:
        """Every metric of every result as one long DataFrame (``crab_eval.load_results``'s columns)."""
        import pandas

        frames = [result.to_frame() for result in self.results.values()]
        return pandas.concat(frames, ignore_index=True) if frames else pandas.DataFrame()


def parse_tasks(spec: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """``"ave,ref_avs:test_u"`` (or a list of such) -> [("ave", None), ("ref_avs", "test_u")]."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        task, _, split = item.partition(":")
        out.append((task.strip(), split.strip() or None))
    if not out:
        raise CrabEvalError("--tasks: no task given")
    return out


def prediction_name(task: Task, split: str) -> str:
    return f"{task.id}.jsonl" if split == task.default_split else f"{task.id}.{split}.jsonl"


def _data_dir(data: str | Path | Mapping[str, str | Path], task_id: str) -> Path:
    if isinstance(data, Mapping):
        if task_id not in data:
            raise CrabEvalError(f"no data folder given for task {task_id!r}")
        return Path(data[task_id])
    return data_dir_for(data, task_id)


def _check_settings(out: Path, settings: dict[str, Any], procs: Processes) -> None:
    """Refuse a folder that holds a run of other settings; write run.json for a new one."""
    path = out / RUN_FILE
    if path.is_file():
        stored = read_json(path)
        differ = [k for k in SETTINGS if stored.get(k) != settings[k]]
        if differ:
            detail = "; ".join(f"{k}: {stored.get(k)!r} there, {settings[k]!r} now" for k in differ)
            raise CrabEvalError(f"holds a run with other settings ({detail}); use another --out", out)
    procs.barrier()  # every process has read run.json before the main process may write it
    if procs.main and not path.is_file():
        write_json(path, settings)


def template(text: str, instruction: str) -> str:
    """``text`` with the sample's instruction replaced by ``{instruction}`` (the prompt's template)."""
    return text.replace(instruction, "{instruction}") if instruction and instruction in text else text


def _predict(
    model: Model,
    task: Task,
    split: Split,
    generation: dict[str, Any],
    batch_size: int,
    log: BatchLog,
    procs: Processes,
    progress: bool,
) -> None:
    """Run this process's batches that no log holds yet."""
    bounds = batch_bounds(len(split), batch_size)
    samples = split.samples

    def ids_of(j: int) -> list[str]:
        start, stop = bounds[j]
        return [s.id for s in samples[start:stop]]

    done = log.done(ids_of)
    mine = assigned(len(bounds), procs.rank, procs.world)
    todo = [j for j in mine if j not in done]
    bar = None
    if progress and procs.main and todo:
        from tqdm.auto import tqdm

        who = f" [process 1 of {procs.world}]" if procs.world > 1 else ""
        total = sum(bounds[j][1] - bounds[j][0] for j in mine)
        bar = tqdm(total=total, initial=total - sum(bounds[j][1] - bounds[j][0] for j in todo), desc=task.id + who)
    for j in todo:
        start, stop = bounds[j]
        requests = [
            Request(task, split, samples[i], i, task.prompt(samples[i]), generation) for i in range(start, stop)
        ]
        responses = model.generate(requests)
        if len(responses) != len(requests):
            raise CrabEvalError(f"model {model.id!r} returned {len(responses)} responses for {len(requests)} requests")
        rows: list[Row] = [resp.row(req.sample.id) for req, resp in zip(requests, responses, strict=True)]
        log.append(j, ids_of(j), rows)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()


def _merge(log: BatchLog, split: Split, batch_size: int, path: Path) -> None:
    bounds = batch_bounds(len(split), batch_size)
    done = log.done(lambda j: [s.id for s in split.samples[bounds[j][0] : bounds[j][1]]])
    lacking = [j for j in range(len(bounds)) if j not in done]
    if lacking:
        raise CrabEvalError(f"{split.task}/{split.name}: batches {lacking[:5]} were not predicted", log.folder)
    write_jsonl(path, (row for j in range(len(bounds)) for row in done[j] if row is not None))
    log.clear()
    if log.folder.parent.is_dir() and not any(log.folder.parent.iterdir()):
        log.folder.parent.rmdir()  # no task left running: the predictions folder is a submission folder again


def _inference_provenance(model: Model, name: str, task: Task, split: Split, settings: dict[str, Any]) -> dict:
    sample = split.samples[0]
    request = Request(task, split, sample, 0, task.prompt(sample), settings["generation"])
    try:
        model_input = template(model.model_input(request), sample.instruction)
    except CrabEvalError as exc:  # e.g. media a resumed run never needed to read
        model_input = f"unavailable ({exc})"
    return {
        "model": name,
        "model_args": {k: str(v) for k, v in model.args.items()},
        "model_info": model.describe(),
        "generation": settings["generation"],
        "batch_size": settings["batch_size"],
        "limit": settings["limit"],
        "prompt_template": template(request.prompt, sample.instruction),
        "model_input_template": model_input,
    }


def evaluate(
    model: str | Model,
    tasks: str | Sequence[str],
    data: str | Path | Mapping[str, str | Path],
    out: str | Path,
    model_args: Mapping[str, str] | None = None,
    generation: str | Mapping[str, Any] | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    run: Mapping[str, Any] | None = None,
    progress: bool = True,
    entry: Mapping[str, Any] | None = None,
    extract: str = "strict",
) -> Evaluation:
    """Predict and score every task; see the module docstring for the layout. Runs under ``accelerate launch``
    too: every process predicts its batches, the main process merges, scores and summarises. With ``entry`` (the
    metadata of a leaderboard submission, submission.schema.json) the predictions folder is also scored as a
    submission into ``OUT/entry.json``, which ``crab-eval leaderboard build --entries OUT`` reads. ``extract`` is
    the answer-extraction tier the predictions are scored with; the predictions do not depend on it, so a folder
    scored with one tier is rescored (not re-predicted) when resumed with the other."""
    if batch_size < 1:
        raise CrabEvalError(f"--batch-size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise CrabEvalError(f"--limit must be at least 1, got {limit}")
    if extract not in EXTRACT_TIERS:  # before any prediction: a typo must not cost a model run
        raise CrabEvalError(f"unknown extraction tier {extract!r}; expected one of {', '.join(EXTRACT_TIERS)}")
    from crab_eval.registry import get_task

    procs = processes()
    out = Path(out)
    chosen = parse_tasks(tasks)
    loaded = []
    for task_id, split_name in chosen:  # every task and data folder checked before a model is loaded
        task = get_task(task_id)
        split = load_split(task, _data_dir(data, task_id), split_name or task.default_split)[:limit]
        loaded.append((task, split))
    name = model if isinstance(model, str) else model.id
    instance = load_model(model, model_args, device=procs.device) if isinstance(model, str) else model
    gen = generation_settings(generation)
    args = {k: str(v) for k, v in (model_args or instance.args).items()}
    settings = {"model": name, "model_args": args, "generation": gen, "batch_size": batch_size, "limit": limit}
    _check_settings(out, settings, procs)
    run_info = {**instance.run_info(), **{k: v for k, v in (run or {}).items() if v is not None}}
    evaluation = Evaluation(out)
    for task, split in loaded:
        pred_path = out / "predictions" / prediction_name(task, split.name)
        result_path = out / "results" / f"{task.id}.{split.name}.json"
        if not pred_path.is_file():
            start = time.perf_counter()
            log = BatchLog(out / "predictions" / ".partial" / f"{task.id}.{split.name}", procs.rank)
            _predict(instance, task, split, gen, batch_size, log, procs, progress)
            procs.barrier()
            if procs.main:
                _merge(log, split, batch_size, pred_path)
            procs.barrier()
            seconds = time.perf_counter() - start
        else:
            seconds = None
        if not procs.main:
            continue
        previous = read_result(result_path) if result_path.is_file() and seconds is None else None
        if previous is not None and previous.provenance.get("extract", "strict") == extract:
            result = previous
        else:
            result = score(task.id, split.data_dir, split.name, pred_path, run=run_info, extract=extract, loaded=split)
            inference = _inference_provenance(instance, name, task, split, settings)
            inference.update(processes=procs.world, seconds=seconds)
            if previous is not None:  # rescored with the other tier: the predictions' own record stays
                before = previous.provenance.get("inference", {})
                inference.update({k: before[k] for k in ("processes", "seconds") if k in before})
            result.provenance["inference"] = inference
            write_result(result, result_path)
        evaluation.results[(task.id, split.name)] = result
    if procs.main:
        title = f"{run_info.get('model', name)} ({extract} answer extraction)"
        evaluation.summary = summary_table(evaluation.results.values(), title)
        write_summary(evaluation, run_info, {**settings, "extract": extract})
        if entry is not None:
            write_entry(out, data, entry, extract)
    return evaluation


def write_entry(
    out: Path, data: str | Path | Mapping[str, str | Path], metadata: Mapping[str, Any], extract: str = "strict"
) -> Path:
    """Score ``OUT/predictions`` as a leaderboard submission with ``metadata`` (exactly what ``crab-eval submit
    score`` does with that folder) into ``OUT/entry.json``."""
    from crab_eval.leaderboard.submission import METADATA, check_metadata, score_submission

    if isinstance(data, Mapping):
        raise CrabEvalError("a leaderboard entry needs --data-root (one folder with a subfolder per task)")
    check_metadata(dict(metadata), METADATA)
    write_json(out / "predictions" / METADATA, dict(metadata))
    score_submission(out / "predictions", data, out / "entry.json", extract=extract)
    return out / "entry.json"


def summary_table(results: Any, title: str) -> Table:
    rows = []
    for r in results:
        main = r.main_metric
        value = r.metrics.get(main)
        rows.append(
            [r.task, r.split, main, "-" if value is None else f"{value:.2f}", r.n_samples, r.n_missing, r.n_unparsed]
        )
    columns = ["task", "split", "main metric", "value", "samples", "missing", "unparsed"]
    return Table(columns, rows, title=title)


def write_summary(evaluation: Evaluation, run_info: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    assert evaluation.summary is not None
    out = evaluation.out
    with atomic_open(out / "summary.md") as handle:
        handle.write(evaluation.summary.to_markdown() + "\n")
    with atomic_open(out / "summary.csv") as handle:
        handle.write(evaluation.summary.to_csv())
    results = [
        {
            "task": r.task,
            "split": r.split,
            "main_metric": r.main_metric,
            "metrics": r.metrics,
            "n_samples": r.n_samples,
            "n_missing": r.n_missing,
            "n_unparsed": r.n_unparsed,
            "result_file": f"results/{r.task}.{r.split}.json",
        }
        for r in evaluation.results.values()
    ]
    write_json(out / "summary.json", {"run": dict(run_info), "settings": dict(settings), "results": results})
