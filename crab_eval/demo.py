"""``crab-eval demo``: the whole job end to end on SynthAV, small enough for a laptop CPU.

Stages (each skipped on a rerun when its outputs exist, so an interrupted demo resumes):

1. ``data/``: synthesise the demo tasks of SynthAV (``crab_eval.synth.suite.build``).
2. ``data/.features``: decode every clip the models read once, in parallel (the feature cache of the suite).
3. ``runs/``: train one single-task model per task and one unified model per adapter (default ``ilora``) on all
   of them, and write their predictions on each task's test split (``predictions/<model>/<task>.jsonl``). Jobs
   run in ``jobs`` worker processes of one thread each (tiny matrices: threads do not pay; processes do).
4. ``results/``: score every prediction file (``crab-eval score``'s engine), with the run information (model,
   variant, adapter, seed, steps); also the trivial baselines (majority, prior) of ``crab_eval.baselines``.
5. ``transfer_<adapter>/``: single vs unified-<adapter> transfer tables (``crab_eval.transfer``), the per-task chart,
   the affinity heatmaps logged by the unified run and the affinity-vs-transfer rank correlation; with ``aa``,
   ``transfer_aa/`` (single-task models against themselves with other training seeds).

What runs is planned in crab_eval.demo_plan; what is reported besides the tables, in crab_eval.demo_report.

Budget: a single-task run takes ``steps`` optimizer steps of ``batch_size`` examples; a unified run on T tasks takes
the same number of steps with batches T times as large, drawn with equal task weights. Both arms therefore see each
task's examples about as often ("same epochs") under the same step count and learning-rate schedule, and the
comparison asks what sharing the model with the other tasks does, not what more training does. docs/demo.md has
the design and how to read the output.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from crab_eval.demo_plan import (
    BASELINES,
    FEATURES,
    TEST_SPLIT,
    TRAIN_SPLIT,
    DemoPlan,
    result_path,
    run_config,
    run_info,
)
from crab_eval.errors import CrabEvalError


def _media_key(data_dir: Path, sample: Any) -> str:
    """Samples that read the same media files share features (MUSIC-AVQA asks several questions per video)."""
    return json.dumps([str(data_dir), dict(getattr(sample, "media", {}) or {})], sort_keys=True, default=str)


def features(task: Any, data_dir: Path, sample: Any) -> Any:
    """The demo's features callable (named in its run configs, ``demo_plan.FEATURES_SPEC``): the standard media
    loaders at the demo's small resolution, cached beside the suite (``<suite>/.features``) and, for the life of
    the process, in memory by media files (~145 kB a clip: reading the disk cache was a tenth of a training step)."""
    from crab_eval.media import FeatureCache, FeatureConfig, sample_features

    memo_key = _media_key(data_dir, sample)
    if memo_key not in _MEMORY:
        root = next((p for p in Path(data_dir).resolve().parents if (p / "synth_config.json").is_file()), None)
        cache = _CACHES.setdefault(str(root), FeatureCache(root / ".features")) if root is not None else None
        _MEMORY[memo_key] = sample_features(task, data_dir, sample, cache=cache, config=FeatureConfig(**FEATURES))
    return _MEMORY[memo_key]


_CACHES: dict[str, Any] = {}
_MEMORY: dict[str, Any] = {}


# ---- worker side -------------------------------------------------------------------------------------------------
def _trained(run_dir: Path, steps: int) -> bool:
    return (run_dir / "checkpoints" / f"step-{steps:07d}" / "state.json").is_file()


def model_job(config: dict[str, Any], predictions: dict[str, tuple[str, str]], max_new_tokens: int) -> dict:
    """Train (unless finished) and predict every task (unless written). Runs in a one-thread worker process."""
    import torch

    torch.set_num_threads(1)
    from crab_eval.model.config import config_from_dict
    from crab_eval.model.predict import predict
    from crab_eval.model.train import train

    run_dir = Path(config["run_dir"])
    name = run_dir.name
    timing: dict[str, float] = {}
    if not _trained(run_dir, config["train"]["steps"]):
        start = time.perf_counter()
        train(config_from_dict(config), progress=False)
        timing["train"] = time.perf_counter() - start
    for task, (data, out) in predictions.items():
        if Path(out).is_file():
            continue
        start = time.perf_counter()
        n = predict(run_dir, task, data, TEST_SPLIT, out, max_new_tokens=max_new_tokens, progress=False)
        timing[f"predict {task}"] = time.perf_counter() - start
        print(f"  [predict] {name} on {task}: {n} samples in {timing[f'predict {task}']:.0f} s", flush=True)
    return {"name": name, "timing": timing}


# ---- main side -----------------------------------------------------------------------------------------------------
def _prefixed(prefix: str) -> Callable[[str], None]:
    """A progress callback that prints each line behind ``prefix``."""
    return lambda line: _say(prefix + line)


def _say(message: str) -> None:
    print(message, flush=True)


def synth_stage(plan: DemoPlan) -> None:
    from crab_eval.synth.suite import MANIFEST, build

    manifest_path = plan.out / "data" / MANIFEST
    if manifest_path.is_file():
        m = json.loads(manifest_path.read_text())
        if m.get("seed") == plan.seed and m.get("size") == plan.size and set(m.get("tasks", ())) == set(plan.tasks):
            _say(f"[1/5 synth] {manifest_path.parent} exists (seed {plan.seed}, {plan.size}): skipped")
            return
    _say(f"[1/5 synth] SynthAV {plan.size}, seed {plan.seed}, tasks {', '.join(plan.tasks)} ...")
    start = time.perf_counter()
    build(plan.out / "data", seed=plan.seed, size=plan.size, jobs=plan.jobs, tasks=plan.tasks)
    plan.timings["synth"] = time.perf_counter() - start
    _say(f"[1/5 synth] done in {plan.timings['synth']:.0f} s")


def feature_job(task_id: str, data_dir: str, split: str, shard: int, shards: int) -> int:
    """Decode one share of a split's media into the suite's feature cache; returns the number of clips. Samples
    are shared out by media files, so a clip with several questions is decoded once, by one process."""
    import torch

    from crab_eval.registry import get_task
    from crab_eval.scoring import load_split

    torch.set_num_threads(1)
    task = get_task(task_id)
    clips = {_media_key(Path(data_dir), s): s for s in load_split(task, data_dir, split)}
    mine = list(clips.values())[shard::shards]
    for sample in mine:
        features(task, Path(data_dir), sample)
    return len(mine)


def features_stage(plan: DemoPlan) -> None:
    """Decode every clip the models read (training and test splits) once, ``plan.jobs`` processes sharing the work,
    before training: the runs then start from the disk cache instead of decoding the same clips side by side."""
    start = time.perf_counter()
    splits = [(t, s) for t in plan.tasks for s in dict.fromkeys((TRAIN_SPLIT.get(t, "train"), TEST_SPLIT))]
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(feature_job, t, str(plan.data_dir(t)), s, shard, plan.jobs)
            for t, s in splits
            for shard in range(plan.jobs)
        ]
        n = sum(f.result() for f in futures)
    plan.timings["features"] = time.perf_counter() - start
    _say(f"[2/5 features] {n} clips decoded or found in the cache ({plan.timings['features']:.0f} s)")


def _last_step(log: Path) -> int:
    """The step of the last line of a train log (read from the end: logs grow to thousands of lines)."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 400))
            lines = handle.read().decode("utf-8", "replace").strip().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def models_stage(plan: DemoPlan) -> None:
    """Train and predict, ``plan.jobs`` models at a time, with one progress bar over the training examples of all
    models (a unified step carries T times the examples of a single-task step, and takes about T times as long)."""
    from tqdm.auto import tqdm

    jobs = []
    for model in plan.models():
        name, tasks = model.name, model.tasks
        config = run_config(plan, model)
        preds = {t: (str(plan.data_dir(t)), str(plan.out / "predictions" / name / f"{t}.jsonl")) for t in tasks}
        todo = not _trained(Path(config["run_dir"]), config["train"]["steps"])
        todo = todo or any(not Path(out).is_file() for _, out in preds.values())
        if todo:
            jobs.append((name, config, preds))
    total = sum(plan.examples(m.tasks) for m in plan.models())
    if not jobs:
        _say("[3/5 train+predict] every model is trained and has its predictions: skipped")
        return
    _say(f"[3/5 train+predict] {len(jobs)} model(s) to do with {plan.jobs} worker(s): "
         + ", ".join(name for name, _, _ in jobs))  # fmt: skip
    start = time.perf_counter()
    logs = {Path(cfg["run_dir"]) / "train_log.jsonl": cfg["train"]["batch_size"] for _, cfg, _ in jobs}
    done_before = total - sum(cfg["train"]["steps"] * cfg["train"]["batch_size"] for _, cfg, _ in jobs)
    bar = tqdm(total=total, initial=done_before, desc="training examples (all models)", unit="ex", smoothing=0.05)
    with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(model_job, cfg, preds, plan.max_new_tokens): name for name, cfg, preds in jobs}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            bar.n = done_before + sum(_last_step(log) * batch for log, batch in logs.items())
            bar.refresh()
            for future in finished:
                result = future.result()  # a worker's error surfaces here
                for key, seconds in result["timing"].items():
                    plan.timings[f"{result['name']} {key}"] = seconds
                bar.write(f"  [done] {result['name']} ({time.perf_counter() - start:.0f} s since start)")
    bar.close()
    plan.timings["train+predict"] = time.perf_counter() - start


def _complete(path: Path) -> bool:
    from crab_eval.results import read_result

    try:
        read_result(path)
    except CrabEvalError:
        return False
    return True


def _portable(result: Any, root: Path) -> Any:
    """Paths in the provenance relative to the demo's folder (``data/...``, ``predictions/...``): result files
    record no absolute path of the machine that made them, so a committed run reads the same anywhere."""
    base = root.resolve()
    for key in ("data_dir", "predictions_file"):
        value = result.provenance.get(key)
        if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(base):
            result.provenance[key] = Path(value).relative_to(base).as_posix()
    return result


def score_stage(plan: DemoPlan) -> None:
    from crab_eval.baselines.predictors import write_baseline
    from crab_eval.results import write_result
    from crab_eval.scoring import score

    start = time.perf_counter()
    n_new = 0

    def write(task: str, preds: Path, run: dict[str, Any], path: Path) -> None:
        write_result(_portable(score(task, plan.data_dir(task), TEST_SPLIT, preds, run=run), plan.out), path)

    for model in plan.models():
        for task in model.tasks:
            path = result_path(plan, model.name, task)
            if not _complete(path):
                write(task, plan.out / "predictions" / model.name / f"{task}.jsonl", run_info(plan, model), path)
                n_new += 1
    for kind in BASELINES:
        for task in plan.tasks:
            path = result_path(plan, f"baseline_{kind}", task)
            if _complete(path):
                continue
            preds = plan.out / "predictions" / f"baseline_{kind}" / f"{task}.jsonl"
            write_baseline(task, plan.data_dir(task), kind, preds, split=TEST_SPLIT,
                           train_split=TRAIN_SPLIT.get(task, "train"), seed=plan.seed)  # fmt: skip
            write(task, preds, {"model": f"baseline-{kind}", "variant": "baseline", "seed": plan.seed}, path)
            n_new += 1
    plan.timings["score"] = time.perf_counter() - start
    _say(f"[4/5 score] {n_new} result file(s) written, the rest existed ({plan.timings['score']:.1f} s)")


def _table(plan: DemoPlan, name: str, title: str, single: list, other: list) -> Any:
    """One transfer table (+ chart) under ``out/transfer_<name>``, printed; returns the report."""
    from crab_eval.transfer import compute_transfer
    from crab_eval.transfer_report import to_text, write_outputs

    start = time.perf_counter()
    report = compute_transfer(single, other, n_boot=plan.n_boot, seed=plan.seed, progress=_prefixed(f"  [{name}] "))
    write_outputs(report, plan.out / f"transfer_{name}")
    _say(f"\n[5/5 transfer] {title} ({time.perf_counter() - start:.0f} s):")
    _say(to_text(report))
    return report


def transfer_stage(plan: DemoPlan) -> dict[str, Any]:
    """Per adapter: the transfer table (+ chart) and the affinity outputs; with ``aa``, the A/A table (single-task
    models against the same configuration with other training seeds). Returns the reports by table name. With
    several training seeds every arm holds one result per seed and task; the affinity outputs come from the first
    seed's unified run."""
    from crab_eval.demo_report import affinity_outputs
    from crab_eval.results import read_result

    start = time.perf_counter()

    def arm(base: str, seeds: list[int] | None = None) -> list:
        return [read_result(path) for t in plan.tasks for path in plan.result_paths(base.format(t), t, seeds)]

    reports = {}
    single = arm("single_{}")  # read once: the arm of every table
    for kind in plan.adapters:
        report = _table(plan, kind, f"single vs unified-{kind}", single, arm(f"unified_{kind}"))
        run_dir = plan.out / "runs" / plan.model_name(f"unified_{kind}", plan.seed)
        for line in affinity_outputs(run_dir, report, plan.out / f"transfer_{kind}"):
            _say(line)
        reports[kind] = report
    if plan.aa:
        seeds = ", ".join(map(str, plan.aa_seeds()))
        reports["aa"] = _table(plan, "aa", f"A/A: single vs single with training seeds {seeds}", single,
                               arm("single_{}", plan.aa_seeds()))  # fmt: skip
    plan.timings["transfer"] = time.perf_counter() - start
    return reports


def _cpu_seconds() -> float:
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def run_demo(plan: DemoPlan) -> dict[str, Any]:
    """Every stage in order; returns the summary written to ``out/demo_summary.json``."""
    from crab_eval.demo_report import score_table, write_summary

    start, cpu_start = time.perf_counter(), _cpu_seconds()
    plan.timings["load1 at start"] = os.getloadavg()[0]  # the machine's load beside the times (shared CPUs)
    plan.out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, Any] = {}
    stages = {"synth": synth_stage, "features": features_stage, "train+predict": models_stage,
              "score": score_stage, "transfer": lambda p: reports.update(transfer_stage(p))}  # fmt: skip
    for name, stage in stages.items():
        before = _cpu_seconds()
        stage(plan)
        # CPU seconds of this process and its finished workers: a figure that other jobs on the machine do not
        # inflate, unlike the wall time.
        plan.timings[f"{name} cpu"] = _cpu_seconds() - before
    plan.timings["total"] = time.perf_counter() - start
    plan.timings["total cpu"] = _cpu_seconds() - cpu_start
    plan.timings["load1 at end"] = os.getloadavg()[0]
    table, rows = score_table(plan)
    _say("\nMain metric per model on each test split (baselines: crab_eval.baselines):")
    _say(table)
    summary = write_summary(plan, reports, rows)
    _say(f"\ndemo finished in {plan.timings['total']:.0f} s; outputs under {plan.out}")
    return summary
