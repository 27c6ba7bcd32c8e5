"""The Python API for notebooks: score predictions held in memory, run a model over tasks, read results as frames.

    import crab_eval
    result = crab_eval.score("ave", "data/AVE_Dataset", frame_or_rows_or_path)
    result.to_frame(), result.samples_frame()
    run = crab_eval.evaluate("hf", "ave,avvp", "data", out="runs/omni", model_args={"path": "Qwen2.5-Omni-7B"})
    crab_eval.load_results(["runs/omni", "runs/crab"])   # one long frame: task, split, model, variant, seed, ...

Everything goes through the same code as the command line (``crab_eval.scoring.score``,
``crab_eval.evaluation.evaluate``), so a notebook's numbers are the command line's numbers.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crab_eval.errors import CrabEvalError
from crab_eval.evaluation import Evaluation
from crab_eval.evaluation import evaluate as run_evaluation
from crab_eval.results import METRIC_COLUMNS, RunResult, read_result

if TYPE_CHECKING:
    import pandas

    from crab_eval.models.base import Model
    from crab_eval.tasks.base import Task

IN_MEMORY = "<in memory>"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON values (a DataFrame's cells are often numpy)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _rows(predictions: Any) -> Iterable[Mapping[str, Any]]:
    if hasattr(predictions, "to_dict") and hasattr(predictions, "columns"):  # a pandas DataFrame
        records: list[dict[str, Any]] = predictions.to_dict("records")
        return ({k: v for k, v in row.items() if not _missing(v)} for row in records)
    return predictions


def score(
    task: str | Task,
    data: str | Path,
    predictions: str | Path | Iterable[Mapping[str, Any]] | pandas.DataFrame,
    split: str | None = None,
    run: Mapping[str, Any] | None = None,
    allow_extra: bool = False,
    extract: str = "strict",
) -> RunResult:
    """Score predictions against a split. ``predictions`` is a prediction file, an iterable of its lines as dicts
    (``{"id", "text"}`` or ``{"id", "prediction"}``), or a DataFrame with those columns (empty cells dropped). Lines
    in memory are written to a temporary file first and read by the same reader, so a bad line is the same error.
    ``extract`` is the answer-extraction tier for text lines: ``strict`` (Crab's templates) or ``flexible``."""
    from crab_eval.registry import get_task
    from crab_eval.scoring import score as score_file

    task_id = task if isinstance(task, str) else task.id
    split = split or get_task(task_id).default_split
    if isinstance(predictions, str | Path):
        return score_file(task_id, data, split, predictions, allow_extra, run=run, extract=extract)
    with tempfile.TemporaryDirectory(prefix="crab-eval-score-") as folder:
        path = Path(folder) / "predictions.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in _rows(predictions):
                if not isinstance(row, Mapping):
                    raise CrabEvalError(f"a prediction must be a mapping with an 'id', got {type(row).__name__}")
                handle.write(json.dumps(dict(row), default=_plain, allow_nan=False) + "\n")
        result = score_file(task_id, data, split, path, allow_extra, run=run, extract=extract)
    result.provenance["predictions_file"] = IN_MEMORY
    return result


def evaluate(
    model: str | Model,
    tasks: str | Sequence[str],
    data: str | Path | Mapping[str, str | Path],
    out: str | Path | None = None,
    **options: Any,
) -> Evaluation:
    """``crab-eval evaluate`` from Python: ``model`` is a registered name (with ``model_args``) or a ``Model``
    instance; ``data`` a data root or ``{task: folder}``; ``options`` as ``crab_eval.evaluation.evaluate``
    (``model_args``, ``generation``, ``batch_size``, ``limit``, ``run``, ``progress``, ``extract``). Without ``out``
    the files go to a temporary folder that is removed; the results stay in the returned ``Evaluation``."""
    if out is not None:
        return run_evaluation(model, tasks, data, out, **options)
    with tempfile.TemporaryDirectory(prefix="crab-eval-evaluate-") as folder:
        return run_evaluation(model, tasks, data, folder, **options)


def _result_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CrabEvalError("result file or folder not found", path)
    found = []
    for candidate in sorted(path.rglob("*.json")):
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and {"task", "split", "metrics", "n_samples"} <= set(data):
            found.append(candidate)
    return found


def load_results(paths: str | Path | Iterable[str | Path]) -> pandas.DataFrame:
    """Every metric of every result file as one long DataFrame: task, split, model, variant, seed, metric, value,
    main, higher_is_better, n_samples, n_missing, n_unparsed, file. A folder is searched for result files (other
    JSON files, such as summaries and run settings, are skipped)."""
    import pandas

    items = [paths] if isinstance(paths, str | Path) else list(paths)
    rows = []
    for item in items:
        for path in _result_files(Path(item)):
            result = read_result(path, with_samples=False)
            rows += [{**row, "file": str(path)} for row in result.metric_rows()]
    return pandas.DataFrame(rows, columns=[*METRIC_COLUMNS, "file"])
