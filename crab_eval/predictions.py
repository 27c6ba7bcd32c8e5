"""Reading prediction files (JSONL): validated line by line, every problem named with its file and line.

A line is ``{"id": ID, "prediction": STRUCTURED}`` or ``{"id": ID, "text": RAW_MODEL_OUTPUT}``. Text lines go
through the task's own answer parser; text that does not parse is *unparsed* and later scored as an empty
prediction. Samples with no line are *missing*. Neither is an error; both are counted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError, PredictionError, PredictionFileError
from crab_eval.io import line_json_error
from crab_eval.tasks.base import EXTRACT_TIERS, Split, Task

MAX_LINE_BYTES = 64 * 1024 * 1024  # one line holds at most one sample's masks; bigger means a broken file


@dataclass
class PredictionSet:
    """Predictions of one file matched against one split."""

    path: Path
    predictions: dict[str, Any]  # sample id -> internal prediction (only the parsed, valid ones)
    prediction_hashes: dict[str, str]  # sample id -> sha256 of the line's prediction (for exact comparison)
    sha256: str
    n_lines: int = 0
    n_text: int = 0
    n_structured: int = 0
    unparsed_ids: list[str] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    errors: list[PredictionFileError] = field(default_factory=list)
    extract: str = "strict"  # the extraction tier that read the text lines
    # Text lines each tier leaves unparsed (all tiers are tried, only ``extract`` is scored): a parse rate per tier.
    unparsed_by_tier: dict[str, int] = field(default_factory=dict)

    @property
    def n_unparsed(self) -> int:
        return len(self.unparsed_ids)

    @property
    def n_missing(self) -> int:
        return len(self.missing_ids)

    def parse_rate(self, tier: str | None = None) -> float | None:
        """Percent of the text lines read under ``tier`` (default: the scored one); None without text lines."""
        if not self.n_text:
            return None
        n_bad = self.n_unparsed if tier is None else self.unparsed_by_tier[tier]
        return 100.0 * (self.n_text - n_bad) / self.n_text

    @property
    def n_extra(self) -> int:
        return len(self.extra_ids)

    def status(self, sample_id: str) -> str:
        if sample_id in self.predictions:
            return "ok"
        return "unparsed" if sample_id in self._unparsed_set else "missing"

    def __post_init__(self) -> None:
        self._unparsed_set: set[str] = set()


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not a number in JSON")


def _has_nan(obj: Any) -> bool:
    """Whether a parsed JSON value holds a non-finite float (a literal such as 1e999 parses to inf)."""
    stack = [obj]  # a loop, not recursion: mask predictions hold ~10^5 values per split
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def read_predictions(
    path: str | Path,
    task: Task,
    split: Split,
    allow_extra: bool = False,
    collect_errors: bool = False,
    progress: Callable[[int], None] | None = None,
    extract: str = "strict",
) -> PredictionSet:
    """Read and validate ``path`` against the samples of ``split`` (from ``task.load`` / ``load_split``); text lines
    are read with the extraction tier ``extract`` (``strict``: the task's templates; ``flexible``: free form too).

    Raises ``PredictionFileError`` at the first bad line, or, with ``collect_errors``, records every problem in
    ``errors`` and reads on (for ``crab-eval validate``).
    """
    if not isinstance(split, Split) or split.task != task.id:
        found = f"a split of task {split.task!r}" if isinstance(split, Split) else type(split).__name__
        raise CrabEvalError(f"predictions of task {task.id!r} need a split of that task (task.load), got {found}")
    if extract not in EXTRACT_TIERS:
        raise CrabEvalError(f"unknown extraction tier {extract!r}; expected one of {', '.join(EXTRACT_TIERS)}")
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError("prediction file not found", path)
    samples = split.samples
    by_id = {s.id: s for s in samples}
    result = PredictionSet(path=path, predictions={}, prediction_hashes={}, sha256="", extract=extract)
    result.unparsed_by_tier = dict.fromkeys(EXTRACT_TIERS, 0)
    seen: set[str] = set()
    digest = hashlib.sha256()
    base_dir = path.parent

    def fail(message: str, line: int | None) -> None:
        error = PredictionFileError(message, path, line)
        if not collect_errors:
            raise error
        result.errors.append(error)

    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            digest.update(raw)
            if progress is not None:
                progress(1)
            if not raw.strip():
                continue
            result.n_lines += 1
            if len(raw) > MAX_LINE_BYTES:
                fail(f"line longer than {MAX_LINE_BYTES} bytes", line_no)
                continue
            try:
                row = json.loads(raw, parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError) as exc:
                fail(line_json_error(exc), line_no)
                continue
            except RecursionError:
                fail("JSON nests too deeply", line_no)
                continue
            if not isinstance(row, dict):
                fail("a line must be a JSON object with an 'id'", line_no)
                continue
            sample_id = row.get("id")
            if "id" not in row:
                fail("missing 'id'", line_no)
                continue
            if not isinstance(sample_id, str):
                fail(f"'id' must be a string, got {type(sample_id).__name__} {sample_id!r}", line_no)
                continue
            if sample_id in seen:
                fail(f"duplicate id {sample_id!r}", line_no)
                continue
            seen.add(sample_id)
            unknown = set(row) - {"id", "prediction", "text"}
            if unknown:
                fail(f"id {sample_id!r}: unknown keys {sorted(unknown)}; expected 'prediction' or 'text'", line_no)
                continue
            if ("prediction" in row) == ("text" in row):
                fail(f"id {sample_id!r}: give exactly one of 'prediction' and 'text'", line_no)
                continue
            sample = by_id.get(sample_id)
            if sample is None:
                if allow_extra:
                    result.extra_ids.append(sample_id)
                else:
                    fail(f"id {sample_id!r} is not in the split (use --allow-extra to ignore such lines)", line_no)
                continue
            if "text" in row:
                result.n_text += 1
                text = row["text"]
                if not isinstance(text, str):
                    fail(f"id {sample_id!r}: 'text' must be a string", line_no)
                    continue
                structured = None
                for tier in EXTRACT_TIERS:
                    parsed = task.extract(text, sample, split, tier) if task.text_predictions else None
                    result.unparsed_by_tier[tier] += parsed is None
                    if tier == extract:
                        structured = parsed
                if structured is None:
                    result.unparsed_ids.append(sample_id)
                    result._unparsed_set.add(sample_id)
                    continue
            else:
                result.n_structured += 1
                structured = row["prediction"]
                if _has_nan(structured):
                    fail(f"id {sample_id!r}: prediction contains NaN or infinity", line_no)
                    continue
            try:
                result.predictions[sample_id] = task.check_prediction(structured, sample, split, base_dir)
            except PredictionError as exc:
                fail(f"id {sample_id!r}: {exc}", line_no)
                continue
            canonical = json.dumps(structured, sort_keys=True, separators=(",", ":"))
            result.prediction_hashes[sample_id] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    result.sha256 = digest.hexdigest()
    result.missing_ids = [s.id for s in samples if s.id not in seen]
    return result
