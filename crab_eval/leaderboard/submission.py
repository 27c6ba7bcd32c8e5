"""Leaderboard submissions: metadata, prediction files, validation and scoring into an entry.

A submission (folder or ``.zip``) holds ``submission.json`` (see ``submission.schema.json``) and prediction files
in the scoring contract's JSONL format:

- ``<task>.jsonl`` — the task's default split (``test`` for every task so far);
- ``<task>.<split>.jsonl`` — an explicit split (e.g. ``ref_avs.test_u.jsonl``);
- ``single_task/<task>[.<split>].jsonl`` — only in a unified submission: the same architecture trained on each
  task alone, so that the leaderboard can show the transfer of joint training;
- ``README.md`` / ``README.txt`` — optional, not read.

Anything else is refused. Files are only ever read as JSON text.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import _umask, write_json
from crab_eval.leaderboard.archive import DEFAULT_LIMITS, Limits, SubmissionError, SubmissionFiles, open_submission
from crab_eval.predictions import read_predictions
from crab_eval.provenance import base_provenance
from crab_eval.registry import get_task, task_ids
from crab_eval.results import RunResult, write_result
from crab_eval.scoring import data_dir_for, load_split, score

ENTRY_KIND = "crab-eval-leaderboard-entry"
ENTRY_SCHEMA_VERSION = 1
METADATA = "submission.json"
SINGLE_TASK_DIR = "single_task"
README_NAMES = ("README.md", "README.txt")
_FILE_NAME = re.compile(r"^(?P<task>[a-z0-9_]+)(?:\.(?P<split>[A-Za-z0-9_]+))?\.jsonl$")


@cache
def submission_schema() -> dict[str, Any]:
    text = resources.files("crab_eval.leaderboard").joinpath("submission.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class PredictionFile:
    name: str  # relative name inside the submission
    path: Path  # local file that is safe to read
    task: str
    split: str
    variant: str  # "unified" or "single-task"


@dataclass
class Submission:
    files: SubmissionFiles
    metadata: dict[str, Any]
    predictions: list[PredictionFile] = field(default_factory=list)

    def display(self, name: str) -> str:
        return self.files.display(name)


def _json_path(error: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def check_metadata(obj: Any, where: str) -> dict[str, Any]:
    """Validate ``submission.json`` against the schema; the first problem (by location) as one line."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(submission_schema())
    validator = validator_cls(submission_schema(), format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        first = errors[0]
        message = first.message
        if first.validator == "anyOf" and not first.absolute_path:
            message = "give 'url' or 'paper' (or both)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise SubmissionError(
            f"{METADATA} does not follow the submission schema at {_json_path(first)}: {message}{more}", where
        )
    return obj


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def load_json_text(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_bytes(), parse_constant=_reject_constant)
    except RecursionError:
        raise SubmissionError("JSON nests too deeply", where) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"malformed JSON ({exc})", where) from None


def _classify(name: str, path: Path, variant: str, where: str) -> PredictionFile:
    folder, _, base = name.rpartition("/")
    if folder not in ("", SINGLE_TASK_DIR):
        raise SubmissionError(
            f"unexpected file {name!r}: prediction files sit at the top level or in {SINGLE_TASK_DIR}/", where
        )
    if folder == SINGLE_TASK_DIR and variant != "unified":
        raise SubmissionError(f"{name!r}: {SINGLE_TASK_DIR}/ runs belong to a unified submission only", where)
    match = _FILE_NAME.match(base)
    if match is None:
        raise SubmissionError(
            f"unexpected file {name!r}: expected {METADATA}, <task>.jsonl, "
            f"<task>.<split>.jsonl or {SINGLE_TASK_DIR}/<task>.jsonl",
            where,
        )
    task_id = match["task"]
    if task_id not in task_ids():
        raise SubmissionError(f"{name!r}: unknown task {task_id!r}; known tasks: {', '.join(task_ids())}", where)
    task = get_task(task_id)
    split = match["split"] or task.default_split
    if split not in task.splits:
        raise SubmissionError(
            f"{name!r}: task {task_id!r} has no split {split!r}; splits: {', '.join(task.splits)}", where
        )
    return PredictionFile(name=name, path=path, task=task_id, split=split, variant="single-task" if folder else variant)


def read_submission(files: SubmissionFiles, limits: Limits = DEFAULT_LIMITS) -> Submission:
    """Metadata checked against the schema and the prediction files named and classified."""
    where = str(files.source)
    if METADATA not in files.files:
        raise SubmissionError(f"no {METADATA} at the top level of the submission", where)
    if files.sizes[METADATA] > limits.max_metadata_bytes:
        raise SubmissionError(f"{METADATA} is larger than {limits.max_metadata_bytes} bytes", where)
    metadata = check_metadata(load_json_text(files.files[METADATA], files.display(METADATA)), files.display(METADATA))
    submission = Submission(files=files, metadata=metadata)
    seen: dict[tuple[str, str, str], str] = {}
    for name in sorted(files.files):
        if name == METADATA or name in README_NAMES:
            continue
        pred = _classify(name, files.files[name], metadata["variant"], where)
        key = (pred.variant, pred.task, pred.split)
        if key in seen:
            raise SubmissionError(f"{name!r} and {seen[key]!r} both hold {pred.task}/{pred.split} predictions", where)
        seen[key] = name
        submission.predictions.append(pred)
    if not submission.predictions:
        raise SubmissionError("no prediction files (<task>.jsonl) in the submission", where)
    return submission


def check_json_lines(pred: PredictionFile, display: str) -> None:
    """Refuse lines nested deeply enough to exhaust the JSON parser (the prediction reader expects ValueErrors)."""
    with pred.path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                json.loads(raw)
            except RecursionError:
                raise SubmissionError("JSON nests too deeply", display, line_no) from None
            except (ValueError, UnicodeDecodeError):
                continue  # reported with its line by the prediction reader


def _relocate(exc: CrabEvalError, local: Path, display: str) -> CrabEvalError:
    """The same error naming the submission member instead of the temporary copy."""
    if exc.path == str(local):
        return type(exc)(exc.message, display, exc.line)
    return exc


def validate(
    path: str | Path, data_root: str | Path | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metadata and one report per prediction file; with ``data_root`` every line is checked against its split."""
    reports = []
    with open_submission(path, limits) as files:
        submission = read_submission(files, limits)
        for pred in submission.predictions:
            display = submission.display(pred.name)
            check_json_lines(pred, display)
            report: dict[str, Any] = {
                "file": pred.name,
                "task": pred.task,
                "split": pred.split,
                "variant": pred.variant,
                "bytes": files.sizes[pred.name],
            }
            if data_root is not None:
                task = get_task(pred.task)
                samples = load_split(task, data_dir_for(Path(data_root), pred.task), pred.split)
                try:
                    preds = read_predictions(pred.path, task, samples, collect_errors=True)
                except CrabEvalError as exc:
                    raise _relocate(exc, pred.path, display) from None
                report.update(
                    n_samples=len(samples),
                    n_lines=preds.n_lines,
                    n_structured=preds.n_structured,
                    n_text=preds.n_text,
                    n_unparsed=preds.n_unparsed,
                    n_missing=preds.n_missing,
                    parse_rate=preds.parse_rate(),
                    errors=[str(_relocate(e, pred.path, display)) for e in preds.errors],
                )
            reports.append(report)
        return submission.metadata, reports


def entry_results_dir(out: Path) -> Path:
    stem = out.name[: -len(".json")] if out.name.endswith(".json") else out.name
    return out.with_name(stem + ".results")


def score_submission(
    path: str | Path,
    data_root: str | Path,
    out: str | Path,
    limits: Limits = DEFAULT_LIMITS,
    extract: str = "strict",
) -> dict[str, Any]:
    """Score every prediction file and write ENTRY.json plus its result files in ENTRY.results/; text answers are
    read with the extraction tier ``extract`` (recorded in the entry; the page labels flexible rows)."""
    out, data_root = Path(out), Path(data_root)
    results: list[tuple[PredictionFile, RunResult]] = []
    with open_submission(path, limits) as files:
        submission = read_submission(files, limits)
        meta = submission.metadata
        for pred in submission.predictions:
            display = submission.display(pred.name)
            check_json_lines(pred, display)
            run = {
                "model": meta["model"],
                "team": meta["team"],
                "variant": pred.variant,
                "submission": Path(path).name,
                "submission_sha256": files.sha256,
            }
            try:
                data_dir = data_dir_for(data_root, pred.task)
                result = score(pred.task, data_dir, pred.split, pred.path, run=run, extract=extract)
            except CrabEvalError as exc:
                raise _relocate(exc, pred.path, display) from None
            result.provenance["predictions_file"] = display
            results.append((pred, result))
        file_info = {name: {"bytes": size} for name, size in sorted(files.sizes.items())}
        sha = files.sha256
    entry: dict[str, Any] = {
        "kind": ENTRY_KIND,
        "schema_version": ENTRY_SCHEMA_VERSION,
        "source": "rescored",
        "submission": meta,
        "submission_file": Path(path).name,
        "submission_sha256": sha,
        "files": file_info,
        "provenance": base_provenance(),
        "extract": extract,
        "results": [],
    }
    final_dir = entry_results_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it owner-only; the results folder is an ordinary folder
    try:
        for pred, result in results:
            name = f"{pred.variant}.{pred.task}.{pred.split}.json"
            write_result(result, staging / name)
            entry["results"].append(
                {
                    "variant": pred.variant,
                    "task": result.task,
                    "split": result.split,
                    "file": pred.name,
                    "result_file": f"{final_dir.name}/{name}",
                    "metrics": result.metrics,
                    "main_metric": result.main_metric,
                    "higher_is_better": result.higher_is_better,
                    "n_samples": result.n_samples,
                    "n_missing": result.n_missing,
                    "n_unparsed": result.n_unparsed,
                    "n_unparsed_by_extract": result.n_unparsed_by_extract,
                    "task_version": result.provenance.get("task_version"),
                    "data_fingerprint": result.provenance.get("data_fingerprint"),
                }
            )
        if final_dir.exists():
            shutil.rmtree(final_dir)
        staging.rename(final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_json(out, entry)
    return entry
