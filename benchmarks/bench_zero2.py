"""Step time of the same training run plain (one process) and under DeepSpeed ZeRO-2 (configs/accelerate_zero2.yaml,
one CPU process: DeepSpeed's CPU accelerator), both through ``crab-eval train``: the built-in AV-LLM on a small AVE
split written with the official layout, media replaced by crab_eval.model.testing's fake features. Prints the median
step time of each (from train_log.jsonl, the first two steps left out) and the ratio; it measures, never fails.

    .venv/bin/python benchmarks/bench_zero2.py --steps 12 --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def step_ms(run_dir: Path) -> float:
    seconds = [json.loads(line)["seconds"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return 1000 * statistics.median(b - a for a, b in itertools.pairwise(seconds[1:]))  # steps 3..N


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from crab_eval.layouts.ave import OFFICIAL_CATEGORIES as CAT
    from crab_eval.layouts.ave import write_dataset

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [(CAT[i % 6], f"vid{i}", i % 4, 6 + i % 4) for i in range(32)]
        write_dataset(root / "ave", {"train": rows})
        config = root / "run.yaml"
        config.write_text(json.dumps({"run_dir": "", "tasks": [{"task": "ave", "data": str(root / "ave")}]}))
        common = [
            f"train.steps={args.steps}",
            f"train.batch_size={args.batch_size}",
            f"train.grad_accum={args.grad_accum}",
            f"train.checkpoint_every={args.steps}",
            "train.features=crab_eval.model.testing:fake_features",
            "--no-progress",
        ]
        train = ["-m", "crab_eval.cli", "train", "--config", str(config)]
        launch = ["-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate_zero2.yaml")]
        launch += ["--num_processes", "1", "--mixed_precision", "no"]
        results = {}
        for name, prefix in (("plain", []), ("zero2", launch)):
            cmd = [sys.executable, *prefix, *train, f"run_dir={root / name}", *common]
            subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            results[name] = step_ms(root / name)
            print(f"{name:6s} step {results[name]:8.1f} ms (median of {args.steps - 2})", flush=True)
        print(f"ZeRO-2 / plain: x{results['zero2'] / results['plain']:.2f}")


if __name__ == "__main__":
    main()
