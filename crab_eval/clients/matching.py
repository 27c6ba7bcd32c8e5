"""Match a client's lines to the samples of a split: by the id a line carries, told apart by its gold where the
id is shared, or by its gold alone where it carries no id; never by guessing.

Each line of the task has a *primary* key (the id it carries, e.g. a VideoID or a question id; None if none) and a
*gold* key (the ground truth it carries, in the same form as the sample's, e.g. AVE's (category, start, end); None
if unknown). A sample has the same two keys. A line's candidates are the samples with its primary key (all samples
if it has none), narrowed to those with its gold when there are several. Lines with the same candidates are one
group:
- one candidate: identical texts are one answer given twice (a rerun appended to the file); different texts are
  two answers for one sample, an error (or, by the user's choice, the first or the last);
- several candidates (samples nothing in the line tells apart, e.g. two AVE clips with the same event and range):
  at most one line per candidate is assigned in order; metric-exact for tasks scored per sample from gold and
  prediction, but which of them gets which answer is arbitrary (reported). More lines than candidates must be
  whole reruns (every text a multiple of times), else an error.
Lines without a primary key whose golds equal the split's, in order (once or k times over), are matched by
position instead: the ids are then exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crab_eval.clients.lines import ClientError, ClientLine
from crab_eval.provenance import portable_path
from crab_eval.tasks.base import Sample, Split

ON_CONFLICT = ("error", "first", "last")
POSITION = "#position"  # primary keys (POSITION, i) name the split's i-th sample


@dataclass(frozen=True)
class Keyed:
    """A line of the task with its text and keys."""

    line: ClientLine
    text: str
    primary: Hashable | None
    gold: Hashable | None


@dataclass(frozen=True)
class SampleKeys:
    """How a source names a sample: its primary key and its gold key (None: the source carries no gold)."""

    primary: Callable[[Sample], Hashable]
    gold: Callable[[Sample], Hashable | None]


@dataclass
class ConvertReport:
    """What a conversion did: every line accounted for, every sample of the split matched or missing."""

    source: str
    task: str
    split: str
    inputs: list[str]
    id_rule: str = ""  # how lines were matched to samples, in words
    lines_read: int = 0
    other_task: int = 0  # lines of another task (a pooled run)
    unrecognised: int = 0  # lines that belong to no task the source's rules know
    outside_split: int = 0  # lines of the task naming no sample of the split
    duplicates: int = 0  # identical answers given again (append-mode reruns), dropped
    conflicts_resolved: int = 0  # samples with different answers, resolved by --on-conflict first|last
    gold_mismatch: int = 0  # lines whose gold differs from the split's for the sample they name (reported only)
    position_gold_mismatch: int = 0  # of those, lines named by a position (lmms-eval doc_id): the order is suspect
    assigned_among_equal_gold: int = 0  # lines given to one of several samples that nothing in the line tells apart
    by_position: bool = False  # matched by position, verified by the golds in order
    matched: int = 0
    missing: int = 0
    missing_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For a result's provenance: paths portable, at most 20 missing ids."""
        data = dict(self.__dict__)
        data["inputs"] = [portable_path(p) for p in self.inputs]
        data["missing_ids"] = self.missing_ids[:20]
        return data

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        out = [
            f"{self.source} -> {self.task}/{self.split}: {self.lines_read} lines read from {len(self.inputs)} file(s)",
            f"  ids: {self.id_rule}",
            f"  matched {self.matched} of the split's samples; {self.missing} left missing (scored as wrong)"
            + (f", e.g. {', '.join(self.missing_ids[:3])}" if self.missing_ids else ""),
            f"  duplicates dropped (identical reruns): {self.duplicates}",
            f"  lines of other tasks skipped: {self.other_task}; unrecognised lines skipped: {self.unrecognised}",
            f"  lines outside the split skipped: {self.outside_split}",
        ]
        if self.conflicts_resolved:
            out.append(f"  samples with different answers resolved by --on-conflict: {self.conflicts_resolved}")
        if self.assigned_among_equal_gold:
            out.append(
                f"  lines assigned among samples with the same gold (metric-exact; which sample got which answer is "
                f"arbitrary, so per-item pairing with another run is not meaningful): {self.assigned_among_equal_gold}"
            )
        named = self.gold_mismatch - self.position_gold_mismatch  # lines placed by their id, not their position
        if named:
            out.append(f"  lines whose gold differs from the annotation files' (check the data): {named}")
        if self.position_gold_mismatch:
            out.append(
                f"  warning: {self.position_gold_mismatch} lines named by position carry a gold other than the "
                "split's sample at that position: is the file in this split's order? (--id-map gives the ids)"
            )
        out.extend(f"  note: {note}" for note in self.notes)
        return out


def match_lines(
    keyed: Sequence[Keyed], split: Split, keys: SampleKeys, report: ConvertReport, on_conflict: str = "error"
) -> dict[str, str]:
    """Sample id -> text for the lines of the task (see the module doc); counts go into ``report``."""
    if on_conflict not in ON_CONFLICT:
        raise ClientError(f"--on-conflict must be one of {', '.join(ON_CONFLICT)}, got {on_conflict!r}")
    samples = split.samples
    golds = [keys.gold(s) for s in samples]
    keyed = _by_position(keyed, samples, golds, report)
    by_primary: dict[Hashable, list[int]] = {}
    for i, sample in enumerate(samples):
        by_primary.setdefault(keys.primary(sample), []).append(i)
        by_primary[(POSITION, i)] = [i]
    everything = list(range(len(samples)))
    groups: dict[tuple[int, ...], list[Keyed]] = {}
    for item in keyed:
        candidates = everything if item.primary is None else by_primary.get(item.primary, [])
        if len(candidates) > 1 and item.gold is not None:
            narrowed = [i for i in candidates if golds[i] == item.gold]
            if not narrowed and item.primary is not None:
                raise item.line.fail(
                    f"{item.primary!r} names {len(candidates)} samples of the split and the line's gold "
                    f"{item.gold!r} is none of theirs: cannot tell which sample it answers"
                )
            candidates = narrowed
        elif len(candidates) > 1:
            named = f"{item.primary!r} names {len(candidates)} samples" if item.primary is not None else "no id"
            raise item.line.fail(f"the line carries {named} and no gold to tell the split's samples apart")
        if not candidates:
            report.outside_split += 1
            continue
        if len(candidates) == 1 and item.gold is not None and golds[candidates[0]] not in (None, item.gold):
            report.gold_mismatch += 1
            position = isinstance(item.primary, tuple) and len(item.primary) == 2 and item.primary[0] == POSITION
            report.position_gold_mismatch += position
        groups.setdefault(tuple(candidates), []).append(item)
    texts: dict[str, str] = {}
    for group, items in groups.items():
        chosen = _resolve(group, items, on_conflict, report)
        if len(group) > 1:
            report.assigned_among_equal_gold += len(chosen)
        for i, text in zip(group, chosen, strict=False):
            texts[samples[i].id] = text
    report.matched = len(texts)
    report.missing_ids = [s.id for s in samples if s.id not in texts]
    report.missing = len(report.missing_ids)
    return texts


def _by_position(
    keyed: Sequence[Keyed], samples: Sequence[Sample], golds: list[Any], report: ConvertReport
) -> list[Keyed]:
    """Lines without ids whose golds are the split's in order (k whole runs): primary = the sample's position."""
    n = len(samples)
    if not keyed or n == 0 or any(k.primary is not None for k in keyed) or len(keyed) % n:
        return list(keyed)
    line_golds = [k.gold for k in keyed]
    if any(g is None for g in golds) or any(line_golds[i] != golds[i % n] for i in range(len(keyed))):
        return list(keyed)
    report.by_position = True
    report.id_rule = "by position: the gold of every line is the split's sample's at that position, in order"
    return [Keyed(k.line, k.text, (POSITION, i % n), k.gold) for i, k in enumerate(keyed)]


def _resolve(candidates: tuple[int, ...], items: list[Keyed], on_conflict: str, report: ConvertReport) -> list[str]:
    """The texts given to ``candidates`` (at most one each), duplicates dropped, conflicts handled."""
    n, texts = len(candidates), [k.text for k in items]
    if n == 1:
        distinct = list(dict.fromkeys(texts))
        report.duplicates += len(texts) - len(distinct)
        if len(distinct) == 1:
            return distinct
        return [_pick(distinct, items, on_conflict, report)]
    if len(texts) <= n:
        return texts
    runs, rest = divmod(len(texts), n)
    counts = Counter(texts)
    if not rest and all(c % runs == 0 for c in counts.values()):
        kept: list[str] = []
        quota = {t: c // runs for t, c in counts.items()}
        for text in texts:
            if quota[text]:
                kept.append(text)
                quota[text] -= 1
        report.duplicates += len(texts) - len(kept)
        return kept
    if on_conflict == "error":
        first = items[0].line
        raise first.fail(
            f"{len(texts)} lines answer {n} samples that nothing in a line tells apart, and they are not whole "
            "identical reruns: cannot tell which answers belong together (keep one run in the file, or pass "
            "--on-conflict first|last)"
        )
    report.conflicts_resolved += 1
    return texts[:n] if on_conflict == "first" else texts[-n:]


def _pick(distinct: list[str], items: list[Keyed], on_conflict: str, report: ConvertReport) -> str:
    if on_conflict == "error":
        first, other = items[0].line, next(k.line for k in items if k.text != items[0].text)
        raise other.fail(
            f"a different answer for the sample of line {first.line_no} of {first.path.name} (a rerun with "
            "another output?): refusing to guess; keep one run in the file, or pass --on-conflict first|last"
        )
    report.conflicts_resolved += 1
    return distinct[0] if on_conflict == "first" else [k.text for k in items][-1]
