"""Task-affinity statistics from one unified run (transfer.md): per-task gradient cosine and lookahead affinity.

Lookahead (TAG, Fifty et al. 2021): theta_i = theta - lr * grad L_i; Z_{i->j} = 1 - L_j(theta_i) / L_j(theta).
Each task's loss is measured on one fixed batch of that task, in eval mode (no dropout), so that L_j(theta) and
L_j(theta_i) differ only by the step. Gradients come from ``torch.autograd.grad``: nothing accumulates into ``.grad``
and no data-parallel hook fires, so it may run on one process while the others wait.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from crab_eval.model.avllm import AVLLM

Batch = dict[str, torch.Tensor]


def _loss(model: AVLLM, batch: Batch) -> torch.Tensor:
    return model(batch)["loss"]


def affinity_rows(
    model: AVLLM, batches: Sequence[Batch], lr: float, kinds: Sequence[str], step: int, task_ids: list[str]
) -> list[dict]:
    """One row per kind: ``{"step", "kind", "tasks", "matrix"}`` (the format ``crab-eval affinity`` reads)."""
    params = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        grads = []
        base_losses = []
        for batch in batches:
            loss = _loss(model, batch)
            g = torch.autograd.grad(loss, params, allow_unused=True)
            grads.append(
                torch.cat(
                    [(gi if gi is not None else torch.zeros_like(p)).flatten() for gi, p in zip(g, params, strict=True)]
                )
            )
            base_losses.append(float(loss.detach()))
        rows = []
        if "grad_cosine" in kinds:
            stacked = torch.stack(grads).float()
            unit = stacked / stacked.norm(dim=1, keepdim=True).clamp_min(1e-12)
            rows.append(_row(step, "grad_cosine", task_ids, (unit @ unit.T).tolist()))
        if "lookahead" in kinds:
            rows.append(_row(step, "lookahead", task_ids, _lookahead(model, params, grads, batches, base_losses, lr)))
        return rows
    finally:
        model.train(was_training)


def _lookahead(
    model: AVLLM,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    batches: Sequence[Batch],
    base: list[float],
    lr: float,
) -> list[list[float]]:
    saved = [p.detach().clone() for p in params]
    sizes = [p.numel() for p in params]
    matrix = []
    with torch.no_grad():
        for g in grads:
            for p, p0, gi in zip(params, saved, torch.split(g, sizes), strict=True):
                p.copy_(p0 - lr * gi.view_as(p).to(p.dtype))
            row = [1.0 - float(_loss(model, b)) / base[j] if base[j] else 0.0 for j, b in enumerate(batches)]
            matrix.append(row)
        for p, p0 in zip(params, saved, strict=True):
            p.copy_(p0)
    return matrix


def _row(step: int, kind: str, tasks: list[str], matrix: list[list[float]]) -> dict:
    return {"step": int(step), "kind": kind, "tasks": list(tasks), "matrix": [[float(v) for v in r] for r in matrix]}
