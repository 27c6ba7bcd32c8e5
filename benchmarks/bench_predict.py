"""Samples per second of `crab-eval evaluate` with the `hf` model against a bare transformers `generate` loop, and
of one process against two.

1. In one process, the same loaded model and processor (a tiny random Qwen2.5-Omni thinker written by
   ``crab_eval.models.testing``, or ``--model-dir`` for a real checkpoint) answer the same samples at the same batch
   size, two ways, interleaved ``--rounds`` times, alternating which goes first (median reported):
   - bare: the loop a user writes by hand (``crab_eval.models.testing.bare_generate``): decode the clip's frames
     and audio (the project's decoders), the chat text, ``processor(...)``, ``model.generate``, ``batch_decode``;
     nothing written;
   - evaluate: ``crab_eval.evaluate(model_instance, ...)`` into a fresh folder: requests from the task, the same
     decoding and generation, per-batch logs, the merged prediction file, scoring, the result and summary files.
   The model is loaded once, before either is timed. Goal: evaluate >= 0.9 x bare.
2. ``python -m crab_eval evaluate`` against ``accelerate launch --multi_gpu --num_processes 2 -m crab_eval
   evaluate`` (gloo on the CPU), wall clock of the whole command (start-up and model loading included), one thread
   per process; the prediction files are checked equal.
Data: SynthAV MUSIC-AVQA (``--size small``: 24 test videos, 6 questions each), the first ``--limit`` questions.

    .venv/bin/python benchmarks/bench_predict.py
    .venv/bin/python benchmarks/bench_predict.py --limit 96 --batch-size 8 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASK = "music_avqa"


def in_process(args: argparse.Namespace, model_dir: Path, root: Path, work: Path) -> dict[str, Any]:
    import torch

    import crab_eval
    from crab_eval.models import load_model
    from crab_eval.models.testing import bare_generate
    from crab_eval.registry import get_task
    from crab_eval.scoring import load_split

    torch.set_num_threads(args.threads)
    model = load_model("hf", {"path": str(model_dir), **video_args(args)})
    samples = load_split(get_task(TASK), root / TASK, "test")[: args.limit].samples
    times: dict[str, list[float]] = {"bare": [], "evaluate": [], "model calls": []}
    # The harness's own share, free of the machine's noise between the two ways: evaluate's time outside the
    # model's generate (requests, logs, merging, scoring, result and summary files).
    inner = model.generate

    def timed(requests: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(requests)
        finally:
            times["model calls"][-1] += time.perf_counter() - start

    model.generate = timed  # type: ignore[method-assign]
    bare_texts: list[str] = []
    for r in range(args.rounds):
        # the two ways alternate in which goes first, so that neither always finds the file cache warm
        for way in ("bare", "evaluate") if r % 2 == 0 else ("evaluate", "bare"):
            start = time.perf_counter()
            if way == "bare":
                bare_texts = bare_generate(
                    model.processor,
                    model.model,
                    samples,
                    root / TASK,
                    args.batch_size,
                    args.max_new_tokens,
                    model.video_size,
                    model.n_frames,
                    model.sampling_rate,
                )
            else:
                times["model calls"].append(0.0)
                crab_eval.evaluate(model, TASK, root, work / f"round{r}", batch_size=args.batch_size,
                                   generation=f"max_new_tokens={args.max_new_tokens}", limit=args.limit,
                                   progress=False)  # fmt: skip
            times[way].append(time.perf_counter() - start)
    written = (work / "round0" / "predictions" / f"{TASK}.jsonl").read_text().splitlines()
    import json

    same = [json.loads(line)["text"] for line in written] == bare_texts
    return {"times": times, "n": len(samples), "same_answers": same}


def video_args(args: argparse.Namespace) -> dict[str, str]:
    if args.model_dir:
        return {}
    from crab_eval.models.testing import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS

    return {"video_min_pixels": str(VIDEO_MIN_PIXELS), "video_max_pixels": str(VIDEO_MAX_PIXELS)}


def processes(args: argparse.Namespace, model_dir: Path, root: Path, work: Path) -> dict[str, Any]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ",".join(f"{k}={v}" for k, v in video_args(args).items())
    common = ["evaluate", "--model", "hf", "--model-args", f"path={model_dir}" + (f",{extra}" if extra else ""),
              "--tasks", TASK, "--data-root", str(root), "--limit", str(args.limit), "--batch-size",
              str(args.batch_size), "--gen-kwargs", f"max_new_tokens={args.max_new_tokens}",
              "--no-progress"]  # fmt: skip
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
              str(port), "-m", "crab_eval"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out: dict[str, Any] = {}
    for name, cmd in (("1 process", [sys.executable, "-m", "crab_eval"]), ("2 processes", launch)):
        folder = work / name.replace(" ", "_")
        start = time.perf_counter()
        done = subprocess.run([*cmd, *common, "--out", str(folder)], env=env, capture_output=True, text=True)
        out[name] = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    files = [(work / f / "predictions" / f"{TASK}.jsonl").read_bytes() for f in ("1_process", "2_processes")]
    out["same_files"] = files[0] == files[1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=None, help="a local Qwen2.5-Omni checkpoint (default: a tiny one)")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-processes", action="store_true", help="only the in-process comparison")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from crab_eval.models.testing import tiny_qwen2_5_omni
    from crab_eval.synth.suite import build

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as folder:
        work = Path(folder)
        model_dir = Path(args.model_dir) if args.model_dir else tiny_qwen2_5_omni(work / "model", seed=0)
        build(work / "suite", seed=0, size="small", tasks=(TASK,))
        root = work / "root"
        root.mkdir()
        (root / TASK).symlink_to(work / "suite" / "MUSIC-AVQA", target_is_directory=True)
        result = in_process(args, model_dir, root, work / "runs")
        bare, ev = (statistics.median(result["times"][k]) for k in ("bare", "evaluate"))
        n = result["n"]
        print(f"{n} {TASK} questions, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
              f"{args.threads} thread(s), median of {args.rounds} rounds; model {model_dir.name}")  # fmt: skip
        print(f"  bare generate loop : {n / bare:7.2f} samples/s ({bare:.2f} s)")
        print(f"  crab_eval.evaluate : {n / ev:7.2f} samples/s ({ev:.2f} s)  = {bare / ev:.2f} x bare")
        overhead = [e - m for e, m in zip(result["times"]["evaluate"], result["times"]["model calls"], strict=True)]
        share = statistics.median(o / e for o, e in zip(overhead, result["times"]["evaluate"], strict=True))
        print(f"  evaluate outside the model's generate: {statistics.median(overhead):.3f} s ({100 * share:.1f}%)")
        print(f"  same answers: {result['same_answers']}")
        if not args.skip_processes:
            runs = processes(args, model_dir, root, work / "procs")
            for name in ("1 process", "2 processes"):
                print(f"  crab-eval evaluate, {name:11s}: {n / runs[name]:7.2f} samples/s ({runs[name]:.2f} s wall)")
            speedup = runs["1 process"] / runs["2 processes"]
            print(f"  2 vs 1 process: {speedup:.2f} x; same files: {runs['same_files']}")


if __name__ == "__main__":
    main()
