"""What a client source is to the converter: how to tell a line's task, where its text and gold are, and, per task,
which id a line carries and how a sample of the split is named in the same terms."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crab_eval.clients.golds import GoldReader, SampleGold
from crab_eval.clients.lines import ClientError, ClientLine, has
from crab_eval.clients.lines import field as line_field
from crab_eval.clients.matching import ConvertReport, Keyed, SampleKeys
from crab_eval.tasks.base import Sample, Split


@dataclass(frozen=True)
class TaskRule:
    """How the lines of one task name their samples."""

    primary: Callable[[ClientLine], Hashable | None]  # the id a line carries (None: it carries none)
    sample_primary: Callable[[Sample], Hashable]  # the same id of a sample
    id_rule: str  # in words, for the report and the docs
    gold: GoldReader | None = None  # the line's gold (from the source's gold field) in the sample-gold form
    sample_gold: SampleGold | None = None


@dataclass(frozen=True)
class Source:
    name: str
    task_of: Callable[[ClientLine], str | None]  # the crab-eval task a line belongs to (None: unrecognised)
    text: Callable[[ClientLine], str]  # the model's text of a line
    rules: Mapping[str, TaskRule]
    gold_field: str = "output"
    refused: Mapping[str, str] = field(default_factory=dict)  # task -> why its output cannot be imported
    files: Callable[[Path, str], list[Path]] = lambda folder, task: []  # a run folder -> the task's own files

    def rule(self, task: str) -> TaskRule:
        if task in self.refused:
            raise ClientError(f"cannot import task {task!r} from {self.name}: {self.refused[task]}")
        if task not in self.rules:
            raise ClientError(
                f"{self.name} writes no output crab-eval can read for task {task!r}; it reads "
                f"{', '.join(sorted(self.rules))}"
            )
        return self.rules[task]

    def keys(self, task: str) -> SampleKeys:
        rule = self.rule(task)
        gold = rule.sample_gold
        return SampleKeys(primary=rule.sample_primary, gold=(lambda s: None) if gold is None else gold)

    def key_lines(self, task: str, split: Split, lines: Sequence[ClientLine], report: ConvertReport) -> list[Keyed]:
        """The lines of ``task`` with their text and keys; the others are counted in ``report``."""
        rule = self.rule(task)
        keyed = []
        for line in lines:
            owner = self.task_of(line)
            if owner is None:
                report.unrecognised += 1
                continue
            if owner != task:
                report.other_task += 1
                continue
            gold = None
            if rule.gold is not None and has(line, self.gold_field):
                gold = rule.gold(str(line_field(line, self.gold_field)), split)
            keyed.append(Keyed(line, self.text(line), rule.primary(line), gold))
        return keyed

    def resolve_inputs(self, task: str, inputs: Sequence[str | Path]) -> list[Path]:
        """Files as given; a folder (a run's output folder) gives the task's own files in it."""
        paths: list[Path] = []
        for given in map(Path, inputs):
            if not given.is_dir():
                paths.append(given)
                continue
            found = self.files(given, task)
            if not found:
                raise ClientError(f"no {self.name} output file of task {task!r} in this folder; give the file", given)
            paths.extend(found)
        return paths


def stem(path: str) -> str:
    """The file name without its extension: ``.../AVE/-0FHUyWa2Ec.mp4`` -> ``-0FHUyWa2Ec``."""
    return os.path.splitext(os.path.basename(path))[0]


def path_tail(path: str, parts: int = 3) -> str:
    """The last ``parts`` components of a path, '/'-joined: the same frame under different data roots
    (``/group/.../AVS/v1s/{uid}/frames/0.jpg`` and ``AVS/v1s/{uid}/frames/0.jpg``) has one tail."""
    pieces = [p for p in re.split(r"[\\/]+", path) if p]
    return "/".join(pieces[-parts:])


def line_str(name: str) -> Callable[[ClientLine], str]:
    """A line's field ``name`` as a string (an error if it is missing)."""

    def read(line: ClientLine) -> str:
        value = line_field(line, name)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise line.fail(f"{name!r} must be a string or an integer, got {value!r}")
        return str(value)

    return read


def sample_id(sample: Sample) -> Hashable:
    return sample.id
