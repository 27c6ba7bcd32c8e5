"""Client outputs -> the prediction contract: what Crab, Crab+ and lmms-eval write, converted without guessing.

``convert(source, task, data_dir, inputs)`` reads a client's output files (or its run folder), keeps the lines of
``task``, matches them to the samples of the split and returns ``Conversion(rows, report)``: contract rows in split
order (``{"id", "text"}``, or ``{"id", "prediction"}`` for masks read from PNGs) and a ``ConvertReport`` of what it
did (lines read, matched, duplicates dropped, other tasks', outside the split, samples left missing). A conversion
never guesses: two different answers for one sample, or lines that nothing tells apart and that are not whole
reruns, are an error (``ClientError``, file and line) unless ``on_conflict`` says to keep the first or the last.
``score(...)`` in crab_eval.scoring then scores the rows written with ``write_predictions``. See docs/clients.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crab_eval.clients.crab import CRAB, MASK_TASKS
from crab_eval.clients.crab_plus import CRAB_PLUS
from crab_eval.clients.generic import jsonl, lmms_eval, read_id_map
from crab_eval.clients.lines import ClientError, read_lines
from crab_eval.clients.masks import crab_masks, find_mask_dir, read_uid_map
from crab_eval.clients.matching import ON_CONFLICT, POSITION, ConvertReport, Keyed, match_lines
from crab_eval.clients.source import Source
from crab_eval.io import write_jsonl
from crab_eval.registry import get_task
from crab_eval.scoring import load_split
from crab_eval.tasks.base import Split

SOURCES = ("crab", "crab-plus", "lmms-eval", "jsonl")
__all__ = ["ON_CONFLICT", "SOURCES", "ClientError", "Conversion", "ConvertReport", "convert", "write_predictions"]


@dataclass(frozen=True)
class Conversion:
    """Contract rows in split order and the report; unpacks as ``rows, report = convert(...)``."""

    rows: list[dict[str, Any]]
    report: ConvertReport

    def __iter__(self) -> Iterator[Any]:
        return iter((self.rows, self.report))

    def texts(self) -> dict[str, str]:
        """Sample id -> model text (the text rows), e.g. for a model that replays a client's answers."""
        return {row["id"]: row["text"] for row in self.rows if "text" in row}


def convert(
    source: str,
    task: str,
    data_dir: str | Path,
    inputs: Sequence[str | Path] = (),
    *,
    split: str | None = None,
    masks: str | Path | None = None,
    id_field: str | None = None,
    text_field: str | None = None,
    id_map: str | Path | None = None,
    on_conflict: str = "error",
    by_position: bool = False,
) -> Conversion:
    """Convert a client's output of ``task`` into contract rows for the split ``split`` (default: the task's).

    ``inputs``: output files, or run folders (the task's own file in them is used). ``masks``: Crab's
    ``mask_img_dir`` (S4, MS3, AVSS; found beside the inputs if not given). ``id_field``/``text_field``: dotted
    paths for ``jsonl`` (default ``id``/``text``) and ``lmms-eval`` (default ``doc_id`` as a position in the split /
    ``filtered_resps``); ``id_map``: lmms-eval doc_id -> sample id (JSON list or object), or for Crab's masks its
    folder uid -> sample id (Crab's test json or AVSBench-semantic metadata.csv: uid -> vid). ``by_position``: lines
    without ids are the split's samples in order (Crab+ AVVP from a one-rank run; the count must match).
    """
    if source not in SOURCES:
        raise ClientError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    task_obj = get_task(task)
    loaded = load_split(task_obj, data_dir, split or task_obj.default_split)
    report = ConvertReport(source, task_obj.id, loaded.name, [str(p) for p in inputs])
    if not task_obj.text_predictions:
        if id_field or text_field:
            raise ClientError("--id-field and --text-field are for text lines; a mask task reads Crab's PNGs")
        return _convert_masks(source, loaded, masks, [Path(p) for p in inputs], report, id_map)
    client = _source(source, task_obj.id, id_field, text_field, id_map)
    paths = client.resolve_inputs(task_obj.id, inputs)
    if not paths:
        raise ClientError("no input file given")
    lines = read_lines(paths)
    report.inputs = [str(p) for p in paths]
    report.id_rule = client.rule(task_obj.id).id_rule
    report.lines_read = len(lines)
    keyed = client.key_lines(task_obj.id, loaded, lines, report)
    if not keyed:
        raise ClientError(
            f"no line of task {task_obj.id!r} among the {len(lines)} lines read ({report.other_task} of other tasks, "
            f"{report.unrecognised} unrecognised): is --from {source} the tool that wrote them?"
        )
    if by_position:
        keyed = _positions(keyed, loaded, report)
    texts = match_lines(keyed, loaded, client.keys(task_obj.id), report, on_conflict)
    return Conversion([{"id": s.id, "text": texts[s.id]} for s in loaded if s.id in texts], report)


def write_predictions(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """The rows as a contract prediction file, written atomically."""
    write_jsonl(path, rows)


def _source(source: str, task: str, id_field: str | None, text_field: str | None, id_map: str | Path | None) -> Source:
    if source in ("crab", "crab-plus") and (id_field or text_field or id_map):
        raise ClientError(f"--id-field, --text-field and --id-map are for lmms-eval and jsonl, not {source}")
    if source == "crab":
        return CRAB
    if source == "crab-plus":
        return CRAB_PLUS
    if source == "lmms-eval":
        return lmms_eval(task, id_field, None if id_map is None else read_id_map(id_map), text_field)
    if id_map is not None:
        raise ClientError("--id-map is for lmms-eval; jsonl lines name their ids (--id-field)")
    return jsonl(task, id_field, text_field)


def _positions(keyed: list[Keyed], split: Split, report: ConvertReport) -> list[Keyed]:
    """--by-position: the i-th line of the task is the split's i-th sample (only for lines that carry no id)."""
    if any(k.primary is not None for k in keyed):
        raise ClientError("--by-position is for lines that carry no id; these lines name their samples")
    if len(keyed) != len(split):
        raise ClientError(
            f"--by-position needs one line per sample: {len(keyed)} lines of the task, {len(split)} samples in the "
            "split (a rerun appended, or a multi-rank run whose lines interleave?)"
        )
    report.by_position = True
    report.id_rule = "--by-position: the i-th line of the task is the split's i-th sample (the user's assertion)"
    return [Keyed(k.line, k.text, (POSITION, i), k.gold) for i, k in enumerate(keyed)]


def _convert_masks(
    source: str,
    split: Split,
    masks: str | Path | None,
    inputs: list[Path],
    report: ConvertReport,
    id_map: str | Path | None,
) -> Conversion:
    # Each client's rules say why its masks cannot be imported (Crab+ saves none; Crab's Ref-AVS PNGs collide).
    if source == "crab-plus" or (source == "crab" and split.task not in MASK_TASKS):
        (CRAB_PLUS if source == "crab-plus" else CRAB).rule(split.task)
    if source != "crab" or split.task not in MASK_TASKS:
        raise ClientError(f"task {split.task!r} is scored on masks; only Crab's saved mask PNGs can be imported")
    uid_map = None if id_map is None else read_uid_map(id_map)
    mask_dir = find_mask_dir(split.task, masks, inputs)
    return Conversion(crab_masks(split.task, split, mask_dir, report, uid_map), report)
