"""Pilot runs for the demo's defaults: train one model with the demo's run configuration, predict and score.

    python benchmarks/demo_pilot.py --suite DIR --out DIR --tasks ave [--steps 600] [--seed 0] [--set adapter.alpha=64]
    python benchmarks/demo_pilot.py --suite DIR --out DIR --tasks ave,synth_ave_swap,s4,ms3,music_avqa --seed 1

One task: a single-task (LoRA) model; several: a unified (I-LoRA) model, with the demo's budget (same steps, 4
examples a task per step). ``--set section.key=JSON`` overrides one entry of the run config (``adapter.alpha=64``,
``train.max_grad_norm=0``). ``--suite`` is a SynthAV folder (``crab-eval synth --size demo``). Prints one JSON line:
training seconds and, per task, the main metric, the unparsed answers and the prediction seconds. The pilot figures
in docs/demo.md and docs/synth.md were measured with it (one thread, on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, help="a SynthAV folder")
    parser.add_argument("--out", required=True, help="where runs, predictions and results go")
    parser.add_argument("--tasks", required=True, help="comma-separated task ids")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch", type=int, default=4, help="examples a task per step")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--name", default=None, help="run name (default from the settings)")
    parser.add_argument("--set", action="append", default=[], help="section.key=JSON override of the run config")
    args = parser.parse_args()

    import torch

    from crab_eval.demo_plan import DemoPlan, ModelRun, run_config
    from crab_eval.model.config import config_from_dict
    from crab_eval.model.predict import predict
    from crab_eval.model.train import train
    from crab_eval.results import write_result
    from crab_eval.scoring import score

    torch.set_num_threads(1)
    tasks = tuple(args.tasks.split(","))
    kind = "ilora" if len(tasks) > 1 else "lora"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "data").exists():
        (out / "data").symlink_to(Path(args.suite).resolve())
    plan = DemoPlan(out=out, steps=args.steps, lr=args.lr, batch_size=args.batch, tasks=tasks)
    settings = "_".join(s.replace("=", "") for s in args.set)
    name = args.name or f"{'unified' if len(tasks) > 1 else 'single_' + tasks[0]}_{args.steps}_{settings}_{args.seed}"
    config = run_config(plan, ModelRun(name, name, tasks, kind, args.seed))
    config["train"]["affinity_every"] = 0
    for item in args.set:
        key, value = item.split("=", 1)
        section, entry = key.split(".")
        config[section][entry] = json.loads(value)
    start = time.perf_counter()
    run_dir = Path(config["run_dir"])
    if not (run_dir / "checkpoints" / f"step-{args.steps:07d}").is_dir():
        train(config_from_dict(config), progress=False)
    report: dict = {"name": name, "train_s": round(time.perf_counter() - start, 1), "results": {}}
    for task in tasks:
        predictions = out / "predictions" / name / f"{task}.jsonl"
        start = time.perf_counter()
        if not predictions.is_file():
            predict(run_dir, task, plan.data_dir(task), "test", predictions, progress=False)
        result = score(task, plan.data_dir(task), "test", predictions, run={"model": name, "seed": args.seed})
        write_result(result, out / "results" / name / f"{task}.json")
        metric = round(result.metrics[result.main_metric], 2)
        report["results"][task] = [metric, result.n_unparsed, round(time.perf_counter() - start, 1)]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
