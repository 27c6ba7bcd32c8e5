"""lmms-eval's per-sample logs and generic JSON Lines: every line is the task's, the id comes from a field.

lmms-eval (``--log_samples``) writes ``{date}_samples_{task}.jsonl``, one object per document: ``doc_id`` is the
document's *position in the task's evaluation split* (after its ``process_docs``), not a benchmark id; the model's
text is ``filtered_resps`` (a string from v0.7, ``[text]`` before; ``resps`` raw). Up to v0.2.2 the logs are one
JSON file ``{"logs": [...]}`` (read the same way). AV benchmarks come from custom task YAMLs, so the position is
mapped through crab-eval's split order only if that YAML lists the same file in the same order; otherwise the user
gives the ids: ``--id-map`` (a JSON list, position -> sample id, or an object {doc_id: sample id}) or ``--id-field``
(a dotted path into the line, e.g. ``doc.question_id`` for logs that keep the ``doc``, up to v0.3).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path

from crab_eval.clients import golds
from crab_eval.clients.golds import GoldReader, SampleGold
from crab_eval.clients.lines import ClientError, ClientLine, field, has, parse_json, read_text, text_of
from crab_eval.clients.matching import POSITION
from crab_eval.clients.source import Source, TaskRule, line_str, sample_id


def read_id_map(path: str | Path) -> dict[str, str]:
    """doc_id (as a string) -> sample id, from a JSON list (index = doc_id) or object."""
    path = Path(path)
    value = parse_json(read_text(path, "id map file"), path, "id map")
    mapping = dict(enumerate(value)) if isinstance(value, list) else value
    if not isinstance(mapping, dict) or not all(type(v) in (str, int) for v in mapping.values()):
        raise ClientError("id map must be a JSON list of sample ids or an object {doc_id: sample id}", path)
    return {str(k): str(v) for k, v in mapping.items()}


# Tasks whose lmms-eval ``target`` (``str(doc_to_target(doc))`` of the user's YAML) is most likely the plain answer or
# label: read as a gold, it tells whether a line landed on its sample. Other tasks' targets have no known form.
_PLAIN_TARGETS: dict[str, tuple[GoldReader, SampleGold]] = {
    "music_avqa": (golds.music_avqa_line, golds.target),
    **{t: (golds.plain_label_line, golds.target) for t in golds.LABEL_TASKS},
}


def lmms_eval(task: str, id_field: str | None, id_map: Mapping[str, str] | None, text_field: str | None) -> Source:
    def primary(line: ClientLine) -> Hashable:
        if id_field is not None:
            return line_str(id_field)(line)
        doc_id = field(line, "doc_id")
        if isinstance(doc_id, bool) or not isinstance(doc_id, int) or doc_id < 0:
            raise line.fail(f"'doc_id' must be a non-negative integer, got {doc_id!r}")
        if id_map is not None:
            return id_map.get(str(doc_id), f"(doc_id {doc_id} not in the id map)")
        return (POSITION, doc_id)

    def text(line: ClientLine) -> str:
        if text_field is not None:
            return text_of(line, text_field)
        return text_of(line, "filtered_resps" if has(line, "filtered_resps") else "resps")

    how = "doc_id = position in the split" if id_map is None else "doc_id -> the id map"
    how = f"the line's {id_field!r}" if id_field else how
    gold, sample_gold = _PLAIN_TARGETS.get(task, (None, None))
    rule = TaskRule(primary, sample_id, how, gold, sample_gold)
    return Source("lmms-eval", lambda line: task, text, {task: rule}, gold_field="target")


def jsonl(task: str, id_field: str | None, text_field: str | None) -> Source:
    id_path, text_path = id_field or "id", text_field or "text"
    rule = TaskRule(line_str(id_path), sample_id, f"the line's {id_path!r} is the sample id")
    return Source("jsonl", lambda line: task, lambda line: text_of(line, text_path), {task: rule})
