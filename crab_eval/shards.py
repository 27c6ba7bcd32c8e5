"""Data-parallel inference in whole batches, with a log that lets a stopped run resume.

The split (after ``--limit``) is cut into batches of ``batch_size`` samples in split order; batch ``j`` goes to
process ``j mod world``. Every batch therefore holds the same samples, padded the same way, whether one process
runs or eight, so a greedy decode gives the same text: the merged file equals a one-process run's (tested).

Each process appends one line per finished batch to its own log (``{"batch", "ids", "rows"}``, flushed and synced);
a line cut by a crash does not parse and its batch is run again. When every process is done, the main process
merges the logs in batch order into the prediction file and removes them. A resumed run reads every log of the
task, whatever process count wrote it, and runs only the batches no log holds.

``processes()`` is the one place that knows about ``accelerate launch``: with ``WORLD_SIZE`` > 1 it starts
accelerate's ``PartialState`` (gloo on CPUs, NCCL on GPUs) for the rank, the device and a barrier. On CPUs start
the processes with ``accelerate launch --multi_gpu --num_processes N`` (or ``torchrun --nproc_per_node N``):
accelerate 1.16's ``--cpu`` flag runs one process unless MPI is set up.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any] | None  # a prediction line, or None for a missing prediction


@dataclass(frozen=True)
class Processes:
    rank: int
    world: int
    device: str | None  # None: the model picks (CUDA if available)
    barrier: Callable[[], None]

    @property
    def main(self) -> bool:
        return self.rank == 0


def processes() -> Processes:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState

        # Without an accelerator the processes talk over gloo on the CPU (accelerate's MULTI_CPU).
        cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available()
        state = PartialState(cpu=cpu)
        return Processes(state.process_index, state.num_processes, str(state.device), state.wait_for_everyone)
    return Processes(0, 1, None, lambda: None)


def batch_bounds(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of every batch, in split order."""
    return [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]


def assigned(n_batches: int, rank: int, world: int) -> list[int]:
    return list(range(rank, n_batches, world))


class BatchLog:
    """The finished batches of one task and split, one file per process under ``folder``."""

    def __init__(self, folder: Path, rank: int) -> None:
        self.folder, self.rank = folder, rank

    @property
    def path(self) -> Path:
        return self.folder / f"rank-{self.rank}.jsonl"

    def done(self, ids_of: Callable[[int], Sequence[str]]) -> dict[int, list[Row]]:
        """Rows of every logged batch whose ids are the batch's ids now (``ids_of(j)``); others are redone."""
        found: dict[int, list[Row]] = {}
        for path in sorted(self.folder.glob("rank-*.jsonl")) if self.folder.is_dir() else []:
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        batch, ids, rows = int(entry["batch"]), entry["ids"], entry["rows"]
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by a crash: the batch runs again
                    try:
                        expected = list(ids_of(batch))
                    except IndexError:
                        continue
                    if ids == expected and len(rows) == len(ids):
                        found[batch] = rows
        return found

    def append(self, batch: int, ids: Sequence[str], rows: Sequence[Row]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"batch": batch, "ids": list(ids), "rows": list(rows)}, allow_nan=False)
        with self.path.open("a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a line cut by a crash: end it, so that this one stands alone
                    handle.write(b"\n")
            handle.write(line.encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
