"""Result files: metrics and provenance in RESULT.json, per-sample stats in RESULT.samples.jsonl beside it.

A result file is enough to re-score, bootstrap, compare and plot without the model: ``aggregate`` of the task
applied to the per-sample stats gives the metrics back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import read_json, read_json_lines, write_json, write_jsonl

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 1


def samples_path_for(result_path: Path) -> Path:
    name = result_path.name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return result_path.with_name(stem + ".samples.jsonl")


@dataclass
class RunResult:
    task: str
    split: str
    metrics: dict[str, float]
    main_metric: str
    higher_is_better: dict[str, bool]
    n_samples: int
    n_missing: int
    n_unparsed: int
    n_extra: int = 0
    # Text lines left unparsed under each extraction tier (strict, flexible); the scored tier is provenance "extract".
    n_unparsed_by_extract: dict[str, int] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)  # model, variant, seed, ... as given by the user
    samples: list[dict[str, Any]] = field(default_factory=list)  # per-sample stats, one dict a sample

    def to_json(self, samples_file: str | None) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "split": self.split,
            "metrics": self.metrics,
            "main_metric": self.main_metric,
            "higher_is_better": self.higher_is_better,
            "n_samples": self.n_samples,
            "n_missing": self.n_missing,
            "n_unparsed": self.n_unparsed,
            "n_extra": self.n_extra,
            "n_unparsed_by_extract": self.n_unparsed_by_extract,
            "run": self.run,
            "provenance": self.provenance,
            "samples_file": samples_file,
        }

    def metric_rows(self) -> list[dict[str, Any]]:
        """One record per metric: task, split, model, variant, seed, metric, value, main, higher_is_better and
        the counts (``to_frame``'s rows)."""
        head = {
            "task": self.task,
            "split": self.split,
            "model": self.run.get("model"),
            "variant": self.run.get("variant"),
            "seed": self.run.get("seed"),
        }
        counts = {"n_samples": self.n_samples, "n_missing": self.n_missing, "n_unparsed": self.n_unparsed}
        return [
            {
                **head,
                "metric": name,
                "value": float(value),
                "main": name == self.main_metric,
                "higher_is_better": self.higher_is_better.get(name),
                **counts,
            }
            for name, value in self.metrics.items()
        ]

    def to_frame(self) -> pandas.DataFrame:
        """The metrics as a long DataFrame, one row per metric (the ``reports`` extra: pandas)."""
        import pandas

        return pandas.DataFrame(self.metric_rows(), columns=list(METRIC_COLUMNS))

    def samples_frame(self) -> pandas.DataFrame:
        """The per-sample stats as a DataFrame, one row per sample (id, group, status, hashes, the task's stats)."""
        import pandas

        return pandas.DataFrame(self.samples)


METRIC_COLUMNS = (
    "task", "split", "model", "variant", "seed", "metric", "value", "main", "higher_is_better", "n_samples",
    "n_missing", "n_unparsed",
)  # fmt: skip


def write_result(result: RunResult, path: str | Path) -> None:
    """Write the per-sample JSONL first and the JSON last, each atomically: the JSON's presence means done. If the
    JSON cannot be written (its path is a folder, say), the per-sample file written for it is removed again."""
    path = Path(path)
    if path.is_dir():
        raise CrabEvalError("the result path is a folder; give a file name such as result.json", path)
    samples_path = samples_path_for(path)
    write_jsonl(samples_path, result.samples)
    try:
        write_json(path, result.to_json(samples_path.name))
    except BaseException:
        samples_path.unlink(missing_ok=True)
        raise


_REQUIRED = ("task", "split", "metrics", "n_samples", "n_missing", "n_unparsed")


def read_result(path: str | Path, with_samples: bool = True) -> RunResult:
    path = Path(path)
    if not path.is_file():
        raise CrabEvalError("result file not found", path)
    data = read_json(path)
    if not isinstance(data, dict) or any(key not in data for key in _REQUIRED):
        raise CrabEvalError(f"not a crab-eval result file (needs keys {', '.join(_REQUIRED)})", path)
    samples: list[dict[str, Any]] = []
    samples_file = data.get("samples_file")
    if with_samples and samples_file:
        samples_path = path.parent / samples_file
        if not samples_path.is_file():
            raise CrabEvalError(f"per-sample stats file {samples_file!r} not found beside the result", path)
        samples.extend(row for _, row in read_json_lines(samples_path))
        if len(samples) != data["n_samples"]:
            raise CrabEvalError(
                f"{samples_file} has {len(samples)} rows but the result says n_samples={data['n_samples']}", path
            )
    return RunResult(
        task=data["task"],
        split=data["split"],
        metrics=data["metrics"],
        main_metric=data.get("main_metric", ""),
        higher_is_better=data.get("higher_is_better", {}),
        n_samples=data["n_samples"],
        n_missing=data["n_missing"],
        n_unparsed=data["n_unparsed"],
        n_extra=data.get("n_extra", 0),
        n_unparsed_by_extract=data.get("n_unparsed_by_extract", {}),
        provenance=data.get("provenance", {}),
        run=data.get("run", {}),
        samples=samples,
    )
