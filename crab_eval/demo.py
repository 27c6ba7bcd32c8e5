"""``crab-eval demo``: the whole job end to end on SynthAV, small enough for a laptop CPU.

Stages (each skipped on a rerun when its outputs exist, so an interrupted demo resumes):

1. ``data/``: synthesise the demo tasks of SynthAV (``crab_eval.synth.suite.build``).
2. ``data/.features``: decode every clip the models read once, in parallel (the feature cache of the suite).
3. ``runs/``: train one single-task model per task and one unified model per adapter (``lora``, ``ilora``) on all
   of them, and write their predictions on each task's test split (``predictions/<model>/<task>.jsonl``). Jobs
   run in ``jobs`` worker processes of one thread each (tiny matrices: threads do not pay; processes do).
4. ``results/``: score every prediction file (``crab-eval score``'s engine), with the run information (model,
   variant, adapter, seed, steps); also the trivial baselines (majority, prior) of ``crab_eval.baselines``.
5. ``transfer_<adapter>/``: single vs unified-<adapter> transfer tables (``crab_eval.transfer``), the per-task chart,
   the affinity heatmaps logged by the unified run and the affinity-vs-transfer rank correlation.

Budget: a single-task run takes ``steps`` optimizer steps of ``batch_size`` examples; a unified run on T tasks takes
the same number of steps with batches T times as large, drawn with equal task weights. Both arms therefore see each
task's examples about as often ("same epochs") under the same step count and learning-rate schedule, and the
comparison asks what sharing the model with the other tasks does, not what more training does. docs/demo.md has
the design and how to read the output.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple

from crab_eval.errors import CrabEvalError

# The planted conflict (ave + synth_ave_swap) and the shared-skill group (ave, avvp, s4) of SynthAV
# (crab_eval/synth/config.py RELATIONS). The null pair (ms3, music_avqa) is left out of the default: it would add
# two single-task runs and a third of the unified budget for a relation whose expected verdict is "neutral".
DEMO_TASKS = ("ave", "synth_ave_swap", "avvp", "s4")
ADAPTERS = ("lora", "ilora")
# AVVP's official layout has dense labels for val and test only (train is weakly labelled): train on val.
TRAIN_SPLIT = {"avvp": "val"}
TEST_SPLIT = "test"
BASELINES = ("majority", "prior")
# Single-task steps per size (unified runs take len(tasks) times as many).
STEPS = {"tiny": 60, "small": 1000, "demo": 1000}

# A small AV-LLM (docs/model.md): 2-layer Llama of width 64, 1 Q-Former query per segment and modality, 32x32
# frames and 32-band log-mels. Measured alone on one thread: ~37 ms a step of 4 examples (docs/demo.md).
MODEL = {
    "hidden_size": 64, "intermediate_size": 128, "layers": 2, "heads": 4, "kv_heads": 2, "vocab_size": 1024,
    "train_embeddings": True, "queries": 1, "projector_dim": 64, "mask_train_size": 32, "mask_image_dim": 32,
    "audio_encoder": {"dim": 32}, "visual_encoder": {"dim": 32, "grid": 4},
}  # fmt: skip
FEATURES = {"n_mels": 32, "frames_per_segment": 16, "image_size": 32}


class ModelRun(NamedTuple):
    name: str
    tasks: tuple[str, ...]
    kind: str  # adapter
    seed: int  # training seed


@dataclass
class DemoPlan:
    out: Path
    size: str = "demo"
    seed: int = 0
    tasks: tuple[str, ...] = DEMO_TASKS
    steps: int | None = None  # single-task steps; None: STEPS[size]
    batch_size: int = 4
    lr: float = 3e-3
    jobs: int = 2
    n_boot: int = 1000
    max_new_tokens: int = 64
    adapters: tuple[str, ...] = ADAPTERS
    seeds: int = 1  # training seeds per model (seed, seed + 1, ...) on the one suite of ``seed``
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.steps is None:
            self.steps = STEPS[self.size]
        if self.steps < 1 or self.jobs < 1 or self.n_boot < 1 or self.seeds < 1:
            raise CrabEvalError("demo: steps, jobs, seeds and bootstrap must be at least 1")
        unknown = set(self.tasks) - set(DEMO_TASKS) - {"ms3", "music_avqa"}
        if unknown:
            raise CrabEvalError(f"demo: tasks must come from SynthAV, got {sorted(unknown)}")

    def data_dir(self, task: str) -> Path:
        from crab_eval.synth.config import TASKS

        return self.out / "data" / TASKS[task][1]

    def train_seeds(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds)]

    def model_name(self, base: str, seed: int) -> str:
        """``single_ave`` with one training seed; ``single_ave_seed1`` etc. with several."""
        return base if self.seeds == 1 else f"{base}_seed{seed}"

    def models(self) -> list[ModelRun]:
        """Every run to train: unified runs first (the longest jobs start first), each for every training seed."""
        bases = [(f"unified_{kind}", self.tasks, kind) for kind in self.adapters]
        bases += [(f"single_{task}", (task,), "lora") for task in self.tasks]
        return [
            ModelRun(self.model_name(base, seed), tasks, kind, seed)
            for base, tasks, kind in bases
            for seed in self.train_seeds()
        ]

    def result_paths(self, base: str, task: str) -> list[Path]:
        """Result files of model ``base`` (e.g. ``single_ave``) on ``task``, one per training seed."""
        return [result_path(self, self.model_name(base, seed), task) for seed in self.train_seeds()]

    def budget(self, tasks: tuple[str, ...]) -> tuple[int, int]:
        """(optimizer steps, batch size) of a run on ``tasks``: the same steps, ``batch_size`` examples a task."""
        assert self.steps is not None, "DemoPlan.steps is resolved from the size before planning"
        return self.steps, self.batch_size * len(tasks)

    def examples(self, tasks: tuple[str, ...]) -> int:
        steps, batch = self.budget(tasks)
        return steps * batch


def features(task: Any, data_dir: Path, sample: Any) -> Any:
    """The demo's features callable (named in its run configs as ``crab_eval.demo:features``): the standard media
    loaders at the demo's small resolution, cached beside the suite (``<suite>/.features``) and, for the life of
    the process, in memory (~145 kB a clip: reading the disk cache was a tenth of a training step)."""
    from crab_eval.media import FeatureCache, FeatureConfig, sample_features

    memo_key = (str(data_dir), sample.id)
    if memo_key not in _MEMORY:
        root = next((p for p in Path(data_dir).resolve().parents if (p / "synth_config.json").is_file()), None)
        cache = _CACHES.setdefault(str(root), FeatureCache(root / ".features")) if root is not None else None
        _MEMORY[memo_key] = sample_features(task, data_dir, sample, cache=cache, config=FeatureConfig(**FEATURES))
    return _MEMORY[memo_key]


_CACHES: dict[str, Any] = {}
_MEMORY: dict[tuple[str, str], Any] = {}


def run_config(plan: DemoPlan, model: ModelRun) -> dict[str, Any]:
    name, tasks, kind, seed = model
    steps, batch_size = plan.budget(tasks)
    unified = len(tasks) > 1
    return {
        "run_dir": str(plan.out / "runs" / name),
        "seed": seed,
        "resume": True,
        "tasks": [
            {"task": t, "data": str(plan.data_dir(t)), "split": TRAIN_SPLIT.get(t, "train"), "weight": 1.0}
            for t in tasks
        ],
        "model": MODEL,
        "adapter": {"kind": kind, "r": 8, "alpha": 16, "dropout": 0.0, "heads": 3},
        "train": {
            "steps": steps, "batch_size": batch_size, "lr": plan.lr, "warmup_ratio": 0.05,
            "schedule": "cosine", "checkpoint_every": max(1, steps // 2), "log_every": 1,
            "router_log_every": max(1, steps // 10) if kind == "ilora" else 0,
            "affinity_every": max(1, steps // 8) if unified else 0, "affinity_batch": 4,
            "features": "crab_eval.demo:features",
        },
    }  # fmt: skip


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
    """Decode one share of a split's clips into the suite's feature cache; returns the number of clips."""
    import torch

    from crab_eval.registry import get_task
    from crab_eval.scoring import load_split

    torch.set_num_threads(1)
    task = get_task(task_id)
    share = load_split(task, data_dir, split)[shard::shards]
    for sample in share:
        features(task, share.data_dir, sample)
    return len(share)


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


def result_path(plan: DemoPlan, model: str, task: str) -> Path:
    return plan.out / "results" / model / f"{task}.json"


def _complete(path: Path) -> bool:
    from crab_eval.results import read_result

    try:
        read_result(path)
    except CrabEvalError:
        return False
    return True


def score_stage(plan: DemoPlan) -> None:
    from crab_eval.baselines.predictors import write_baseline
    from crab_eval.results import write_result
    from crab_eval.scoring import score

    start = time.perf_counter()
    n_new = 0
    for name, tasks, kind, seed in plan.models():
        variant = "unified" if len(tasks) > 1 else "single"
        steps, batch_size = plan.budget(tasks)
        run = {"model": f"synthav-demo-{name}", "variant": variant, "adapter": kind, "seed": seed, "steps": steps,
               "batch_size": batch_size, "tasks": ",".join(tasks), "suite_size": plan.size}  # fmt: skip
        for task in tasks:
            path = result_path(plan, name, task)
            if _complete(path):
                continue
            preds = plan.out / "predictions" / name / f"{task}.jsonl"
            write_result(score(task, plan.data_dir(task), TEST_SPLIT, preds, run=run), path)
            n_new += 1
    for kind in BASELINES:
        for task in plan.tasks:
            path = result_path(plan, f"baseline_{kind}", task)
            if _complete(path):
                continue
            preds = plan.out / "predictions" / f"baseline_{kind}" / f"{task}.jsonl"
            write_baseline(task, plan.data_dir(task), kind, preds, split=TEST_SPLIT,
                           train_split=TRAIN_SPLIT.get(task, "train"), seed=plan.seed)  # fmt: skip
            run = {"model": f"baseline-{kind}", "variant": "baseline", "seed": plan.seed}
            write_result(score(task, plan.data_dir(task), TEST_SPLIT, preds, run=run), path)
            n_new += 1
    plan.timings["score"] = time.perf_counter() - start
    _say(f"[4/5 score] {n_new} result file(s) written, the rest existed ({plan.timings['score']:.1f} s)")


def transfer_stage(plan: DemoPlan) -> dict[str, Any]:
    """Per adapter: the transfer table (+ chart) and the affinity outputs; returns the reports by adapter. With
    several training seeds every arm holds one result per seed and task, and the comparator's bootstrap is
    hierarchical (seeds, then clips); the affinity outputs come from the first seed's unified run."""
    from crab_eval.demo_report import affinity_outputs
    from crab_eval.results import read_result
    from crab_eval.transfer import compute_transfer
    from crab_eval.transfer_report import to_text, write_outputs

    reports = {}
    single = [read_result(path) for t in plan.tasks for path in plan.result_paths(f"single_{t}", t)]  # both tables
    for kind in plan.adapters:
        out = plan.out / f"transfer_{kind}"
        unified = [read_result(path) for t in plan.tasks for path in plan.result_paths(f"unified_{kind}", t)]
        start = time.perf_counter()
        report = compute_transfer(
            single, unified, n_boot=plan.n_boot, seed=plan.seed, progress=_prefixed(f"  [transfer {kind}] ")
        )
        write_outputs(report, out)
        _say(f"\n[5/5 transfer] single vs unified-{kind} ({time.perf_counter() - start:.0f} s):")
        _say(to_text(report))
        for line in affinity_outputs(plan.out / "runs" / plan.model_name(f"unified_{kind}", plan.seed), report, out):
            _say(line)
        reports[kind] = report
    return reports


def run_demo(plan: DemoPlan) -> dict[str, Any]:
    """Every stage in order; returns the summary written to ``out/demo_summary.json``."""
    from crab_eval.demo_report import score_table, write_summary

    start = time.perf_counter()
    plan.out.mkdir(parents=True, exist_ok=True)
    synth_stage(plan)
    features_stage(plan)
    models_stage(plan)
    score_stage(plan)
    reports = transfer_stage(plan)
    plan.timings["total"] = time.perf_counter() - start
    table, rows = score_table(plan)
    _say("\nMain metric per model on each test split (baselines: crab_eval.baselines):")
    _say(table)
    summary = write_summary(plan, reports, rows)
    _say(f"\ndemo finished in {plan.timings['total']:.0f} s; outputs under {plan.out}")
    return summary


def plan_dict(plan: DemoPlan) -> dict[str, Any]:
    data = asdict(plan)
    data["out"] = str(plan.out)
    data["tasks"] = list(plan.tasks)
    data["adapters"] = list(plan.adapters)
    data.pop("timings")
    return data
