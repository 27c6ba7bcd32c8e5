"""SynthAV's planted conflict: AVE's layout, metric, instruction and answer template under another task id.

The suite writes this task's ``Annotations.txt`` with other official AVE category words for the same classes (see
crab_eval/synth/config.py, RELATIONS["conflict"]), so the same kind of clip and the same prompt have a different
answer word than in ``ave``. Everything else is AVE's adapter unchanged: the class index still comes from
``Annotations.txt``, and the metric is the official per-segment accuracy. See docs/synth.md.
"""

from __future__ import annotations

from typing import ClassVar

from crab_eval.tasks.ave import AveTask


class SynthAveSwapTask(AveTask):
    id: ClassVar[str] = "synth_ave_swap"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "SynthAV conflict task: AVE format and metric, class words permuted against 'ave' (synthetic data only)"
    )
    splits: ClassVar[tuple[str, ...]] = ("test", "val", "train")
