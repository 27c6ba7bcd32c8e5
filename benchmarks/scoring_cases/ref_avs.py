"""Ref-AVS scoring inputs of the official test-set sizes, from the repository's data/metadata.csv: test_s 2,288,
test_u 1,656 and test_n 1,028 expressions (val 1,349 is not built). Expressions come three to an object, sharing
their ground truth as in the release. Ground truth is written at 256x256 (the release's 1280x720 PNGs are resized
by OpenCV on reading, which then dominates ``crab-eval score``). Predictions: the truth shifted, sometimes empty;
on test_n mostly empty with some false positives; a few missing or text-only."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.ref_avs import SIDE, Expression, random_masks, write_ref_avs
from crab_eval.metrics.masks import encode_mask

SIZES = {"test_s": 2288, "test_u": 1656, "test_n": 1028}


def _rows(rng: np.random.Generator) -> list[Expression]:
    rows = []
    for split, n in SIZES.items():
        for i in range(n):
            obj = i // 3
            if split == "test_n":
                rows.append(
                    Expression(
                        f"null_c-{split}{obj:04d}_0_10000_null_{i % 3 + 1}", split, vid=f"{split}{obj:04d}_0_10000"
                    )
                )
            else:
                masks = random_masks(rng, (SIDE, SIDE)) if i % 3 == 0 else rows[-1].masks
                rows.append(Expression(f"{split}{obj:04d}_0_10000_dog_{i % 3 + 1}", split, masks=masks))
    return rows


def _prediction(rng: np.random.Generator, row: Expression) -> dict:
    if row.masks is None:
        masks = [np.zeros((SIDE, SIDE), bool) for _ in range(10)]
        if rng.random() < 0.3:
            masks = random_masks(rng, (SIDE, SIDE))
    else:
        masks = [np.roll(m, tuple(int(v) for v in rng.integers(-12, 13, 2)), axis=(0, 1)) for m in row.masks]
        if rng.random() < 0.05:
            masks = [np.zeros_like(m) for m in masks]
    return {"masks": [encode_mask(m) for m in masks]}


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    rows = _rows(rng)
    data = root / "REFAVS"
    write_ref_avs(data, rows)
    cases = []
    for split in SIZES:
        seen: dict[str, int] = {}
        lines = []
        for row in (r for r in rows if r.split == split):
            seen[row.uid] = seen.get(row.uid, 0) + 1
            sid = row.uid if seen[row.uid] == 1 else f"{row.uid}#{seen[row.uid]}"
            kind = rng.random()
            if kind < 0.02:
                continue
            if kind < 0.04:
                lines.append({"id": sid, "text": "<answer>false</answer>"})
                continue
            lines.append({"id": sid, "prediction": _prediction(rng, row)})
        path = root / f"ref_avs_{split}_predictions.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        cases.append(("ref_avs", data, split, path))
    return cases
