"""Task families whose reading is the same and only their data differ.

``JsonListTask``: a split is one JSON list of items (MUSIC-AVQA, AVQA, Crab+'s classification files). Reading the
file, naming a bad element by its line, and suffixing repeated ids with ``#2``, ``#3``... are done here once; a task
says where the file is, how one item is checked (``read_item``) and which sample it is (``item_sample``).

``PooledAccuracyTask``: question answering scored as accuracy pooled over groups of questions; the pools are data
(``pools``: metric name -> question groups, ``ALL`` for every question).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from crab_eval.metrics.accuracy import grouped_accuracy, grouped_accuracy_additive
from crab_eval.readers.json_list import parse_json_list
from crab_eval.tasks.base import Sample, Split, Task, require_file, unique_ids


class JsonListTask(Task):
    """A task whose split file is one JSON list; ``read_item`` returns a mapping with the item's ``id``."""

    item_noun: ClassVar[str] = "question"  # errors say "question 3: ..."
    split_path: ClassVar[Callable[[Path, str], Path]]  # (data_dir, split) -> the split's file: the layout's function

    def split_file(self, data_dir: Path, split: str) -> Path:
        return type(self).split_path(data_dir, split)

    @abstractmethod
    def read_item(self, obj: Any) -> Mapping[str, Any]:
        """One element of the list, checked (``ValueError`` says what is wrong); its ``id`` names the sample."""

    @abstractmethod
    def item_sample(self, sample_id: str, item: Mapping[str, Any]) -> Sample:
        """The sample of one checked item (``sample_id`` is its id, suffixed if the file repeats it)."""

    def split_context(self, items: Sequence[Mapping[str, Any]], path: Path) -> Any:
        """What parsing and checking need beyond the samples (None by default)."""
        return None

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [self.split_file(data_dir, split)]

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = require_file(self.split_file(data_dir, split))
        items = parse_json_list(path, self.read_item, self.item_noun, f"{self.item_noun} objects")
        context = self.split_context(items, path)
        ids = unique_ids([str(item["id"]) for item in items], path)
        samples = [self.item_sample(sample_id, item) for sample_id, item in zip(ids, items, strict=True)]
        return Split(self.id, split, data_dir, samples, context)


class PooledAccuracyTask(JsonListTask):
    """QA whose per-sample stats hold ``correct`` and the question group ``qtype``; every metric is the accuracy of
    a pool of groups, in the order of ``pools``."""

    pools: ClassVar[Mapping[str, Sequence[str] | None]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "pools" in cls.__dict__:
            # The bootstrap's fast path: the same pooled accuracies from column sums (crab_eval/additive.py).
            cls.additive = grouped_accuracy_additive(cls.pools)

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Pooled accuracies; a pool with no questions is left out (the official code divides by zero there)."""
        return grouped_accuracy(stats, self.pools)
