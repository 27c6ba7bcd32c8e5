"""The committed leaderboard's rescored rows: the reference baselines on the real public annotation files.

    python -m crab_eval.baselines.rescore_real --data-root DIR --out results/leaderboard

``DIR`` holds one folder per task id with the task's official files, as ``crab-eval submit score --data-root``
takes them (docs/leaderboard.md lists where each public file comes from). Nothing is fetched. Every task folder
present is used. Each baseline kind (majority, prior, random, blind) becomes one submission: predictions for the
test split of every task, fitted by ``fit_plan`` (the training split where its files are present, else another
labelled split, else cross-fitting on the test split), validated and scored exactly like a team's submission.

``OUT`` receives ``entries/`` (entry + result files), the site (``index.html``, ``leaderboard.md``, CSVs) and
``real-data.json``: per task the files read with their sha256 and, where the hash is one of
``real_sources.json``, the public repository, path and commit they match; the data fingerprint of every split
used; the fit of each baseline. Absolute paths of the machine that ran it are replaced by ``DATA_ROOT`` and the
submission's own names, so the committed files say nothing about where they were made. ``OUT`` is replaced as a
whole only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from crab_eval.baselines.predictors import KINDS, NotApplicable, fit_plan, write_baseline
from crab_eval.errors import CrabEvalError
from crab_eval.io import write_json
from crab_eval.leaderboard.render import build_site
from crab_eval.leaderboard.submission import score_submission, validate
from crab_eval.provenance import data_fingerprint, file_sha256, now_utc
from crab_eval.registry import get_task, task_ids

MANIFEST = "real-data.json"
_MATCH_KEYS = ("task", "name", "sha256")  # what a known source is matched on; the rest says where it comes from
DATA_ROOT = "DATA_ROOT"
NAMES = {
    "majority": "Majority baseline",
    "prior": "Class-prior baseline",
    "random": "Random baseline",
    "blind": "Blind (question-only) baseline",
}
NOTE = (
    "crab-eval reference predictor '{kind}' (docs/leaderboard.md), on the real public annotation files (sha256 "
    "and sources in real-data.json beside the entries). Fitted on: {fits}. Seed {seed}."
)


def known_sources() -> dict[str, dict[str, Any]]:
    text = resources.files("crab_eval.baselines").joinpath("real_sources.json").read_text(encoding="utf-8")
    return {item["sha256"]: item for item in json.loads(text)["files"]}


def present_tasks(data_root: Path) -> list[str]:
    """Registered tasks with a folder under ``data_root`` holding the files of their default split."""
    out = []
    for task_id in task_ids():
        folder = data_root / task_id
        task = get_task(task_id)
        if folder.is_dir() and all(Path(f).is_file() for f in task.annotation_files(folder, task.default_split)):
            out.append(task_id)
    return out


def describe_fit(summary: dict[str, Any]) -> str:
    """What a baseline was fitted on, from the summary ``predict`` returns."""
    if summary.get("cross_fit"):
        return f"{summary['cross_fit']}-fold cross-fit on the {summary['split']} split (no public training labels)"
    if "train_split" in summary:
        return f"the {summary['train_split']} split ({summary['n_train']} samples)"
    return str(summary.get("fit", "nothing"))  # mask tasks: a fixed fill of the ground truth's mask size


def _files_of(task_id: str, folder: Path, splits: Sequence[str]) -> list[Path]:
    task = get_task(task_id)
    return sorted({Path(f) for split in splits for f in task.annotation_files(folder, split)})


def data_manifest(data_root: Path, tasks: Sequence[str], plans: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sources = known_sources()
    out: dict[str, Any] = {}
    for task_id in tasks:
        task, folder = get_task(task_id), data_root / task_id
        splits = sorted({task.default_split, plans[task_id]["train_split"]})
        files = []
        for path in _files_of(task_id, folder, splits):
            sha = file_sha256(path)
            src = sources.get(sha)
            files.append(
                {
                    "name": path.relative_to(folder).as_posix(),
                    "bytes": path.stat().st_size,
                    "sha256": sha,
                    "source": None if src is None else {k: v for k, v in src.items() if k not in _MATCH_KEYS},
                }
            )
        out[task_id] = {
            "test_split": task.default_split,
            "fit": plans[task_id],
            "files": files,
            "data_fingerprint": {
                split: data_fingerprint(task.annotation_files(folder, split), folder) for split in splits
            },
        }
    return out


def _submission(folder: Path, kind: str, fits: dict[str, str], seed: int) -> None:
    meta = {
        "schema_version": 1,
        "model": NAMES[kind],
        "team": "crab-eval reference baselines",
        "paper": "crab-eval docs/leaderboard.md (reference predictors)",
        "parameters": 0,
        "llm_backbone": "none",
        "encoders": {"audio": "none", "visual": "none"},
        "training_data": [f"{task}: {fit}" for task, fit in fits.items()],
        "variant": "single-task",
        "date": now_utc()[:10],
        "notes": NOTE.format(kind=kind, fits="; ".join(f"{t}: {f}" for t, f in fits.items()), seed=seed),
    }
    (folder / "submission.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def relative_paths(obj: Any, prefixes: dict[str, str], command: str) -> Any:
    """``obj`` with every string starting with one of ``prefixes`` rewritten and every ``command`` replaced."""
    if isinstance(obj, dict):
        return {k: command if k == "command" else relative_paths(v, prefixes, command) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, prefixes, command) for v in obj]
    if isinstance(obj, str):
        for prefix in sorted(prefixes, key=len, reverse=True):
            if obj == prefix or obj.startswith(prefix + "/"):
                return (prefixes[prefix] + obj[len(prefix) :]).lstrip("/")
    return obj


def absolute_strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in absolute_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in absolute_strings(v)]
    if isinstance(obj, str) and (obj.startswith("/") or (len(obj) > 2 and obj[1] == ":" and obj[2] in "/\\")):
        return [obj]
    return []


def drop_samples(folder: Path) -> None:
    """Remove the per-sample files of every result under ``folder`` (``samples_file`` becomes null).

    Per-sample rows can carry the ground truth (UnAV's hold every test segment), which must not be republished
    with the committed results; the page needs only the aggregates.
    """
    for path in sorted(folder.rglob("*.samples.jsonl")):
        path.unlink()
    for path in sorted(folder.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("samples_file"):
            write_json(path, {**data, "samples_file": None})


def scrub(folder: Path, prefixes: dict[str, str], command: str) -> None:
    """Rewrite every JSON file under ``folder`` without this machine's paths; refuse if any absolute path is left."""
    for path in sorted(folder.rglob("*.json")):
        data = relative_paths(json.loads(path.read_text(encoding="utf-8")), prefixes, command)
        left = absolute_strings(data)
        if left:
            raise CrabEvalError(f"absolute path left in a result file: {left[0]!r}", path)
        write_json(path, data)
    for path in sorted(folder.rglob("*.jsonl")):
        text = path.read_text(encoding="utf-8")
        if any(prefix in text for prefix in prefixes):
            raise CrabEvalError("a machine path is written in a per-sample file", path)


def rescore(
    data_root: str | Path,
    out: str | Path,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    keep_samples: bool = False,
) -> dict[str, Any]:
    """Write the baseline entries, the site and the data manifest to ``out``; returns the manifest."""
    data_root, out = Path(data_root), Path(out)
    if not data_root.is_dir():
        raise CrabEvalError("data root not found", data_root)
    root = data_root.resolve()
    tasks = list(tasks) if tasks else present_tasks(root)
    if not tasks:
        raise CrabEvalError("no task folder with its official files (e.g. ave/testSet.txt)", data_root)
    plans = {task: fit_plan(task, root / task) for task in tasks}
    shown_out = out.as_posix() if not out.is_absolute() else out.name
    command = f"python -m crab_eval.baselines.rescore_real --data-root {DATA_ROOT} --out {shown_out} --seed {seed}"
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        manifest: dict[str, Any] = {
            "kind": "crab-eval-real-data-baselines",
            "command": command,
            "seed": seed,
            "tasks": data_manifest(root, tasks, plans),
        }
        with tempfile.TemporaryDirectory(prefix="crab-eval-rescore-") as tmp:
            work = Path(tmp)
            for kind in KINDS:
                sub = work / kind
                sub.mkdir()
                fits = {}
                for task in tasks:
                    try:
                        summary = write_baseline(
                            task, root / task, kind, sub / f"{task}.jsonl", seed=seed, **plans[task]
                        )
                    except NotApplicable as exc:  # e.g. the blind baseline on a task without questions
                        manifest["tasks"][task].setdefault("not_run", {})[kind] = exc.message
                        continue
                    fits[task] = describe_fit(summary)
                if not fits:
                    continue
                _submission(sub, kind, fits, seed)
                _meta, reports = validate(sub, root)
                bad = [e for r in reports for e in r.get("errors", [])]
                if bad:
                    raise CrabEvalError(f"the {kind} baseline does not validate: {bad[0]}")
                entry = score_submission(sub, root, staging / "entries" / f"{kind}.json")
                for result in entry["results"]:
                    main = result["main_metric"]
                    manifest["tasks"][result["task"]].setdefault("baselines", {})[kind] = {
                        "fitted on": fits[result["task"]],
                        "split": result["split"],
                        "n_samples": result["n_samples"],
                        "main_metric": main,
                        "value": result["metrics"][main],
                    }
            prefixes = {str(root): DATA_ROOT, str(data_root): DATA_ROOT, str(work): "", str(work.resolve()): ""}
            if not keep_samples:
                drop_samples(staging / "entries")
            scrub(staging / "entries", prefixes, command)
        build_site(staging / "entries", staging)
        write_json(staging / MANIFEST, manifest)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder with one folder of official files per task id")
    parser.add_argument("--out", default="results/leaderboard", help="site folder (replaced as a whole)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior and random baselines")
    parser.add_argument("--tasks", nargs="*", help="task ids (default: every task folder present)")
    parser.add_argument(
        "--keep-samples",
        action="store_true",
        help="keep the per-sample files (they may hold ground truth: not for publishing)",
    )
    args = parser.parse_args(argv)
    try:
        manifest = rescore(args.data_root, args.out, args.seed, args.tasks, args.keep_samples)
    except CrabEvalError as exc:
        print(f"rescore_real: error: {exc}", file=sys.stderr)
        return 2
    for task, info in manifest["tasks"].items():
        for kind, r in info.get("baselines", {}).items():
            print(f"{task} {r['split']} {kind}: {r['main_metric']} {r['value']:.2f} (fitted on {r['fitted on']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
