"""Adapters on the backbone's linear layers: LoRA (peft), I-LoRA and MoE-LoRA (here, vectorised).

I-LoRA (Crab, ``peft_hyper/tuners/lora.py``): one shared A (in -> r), N heads B_i (r -> out, zero-initialised), a
router Linear(in -> N, no bias) over the layer input (before dropout) with a per-token softmax:
``y = W x + (alpha / r) * sum_i softmax(router(x))_i * B_i A dropout(x)``. A and the router are initialised with
kaiming-uniform(a = sqrt 5) as there. The N heads are computed in one matmul: the routed copies of ``A x`` are laid
side by side ([..., N * r]) and multiplied by the heads' B matrices laid side by side ([out, N * r]).

MoE-LoRA (Crab's ``peft_hyper/tuners/mmoelora.py``, carried over to Crab+): the rank r is split evenly into N experts
of rank r / N; a per-layer task embedding (te_dim) feeds a gate Linear(te_dim -> N, no bias) + softmax; expert i's
output is scaled by its gate weight. A ~ N(0, 0.01), B = 0 as there. Since the gate depends on the task only, the
experts collapse into one LoRA whose rank dimensions are scaled by the repeated gate weights: one matmul each way.

Router statistics: while ``RoutingContext.record`` is on, every routed layer adds, per task, the mean routing weights
of each sample's valid tokens; ``RoutingContext.summary`` turns the sums into per-task means for the log.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RoutingContext:
    """State shared by all routed layers of one model: the batch's task indices and token mask, and statistics."""

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks
        self.task_index: torch.Tensor | None = None  # [B] long
        self.token_mask: torch.Tensor | None = None  # [B, L] bool, True on real tokens
        self.record = False
        self.sums: dict[str, torch.Tensor] = {}  # layer -> [T, N] summed per-sample mean weights
        self.counts: dict[str, torch.Tensor] = {}  # layer -> [T] samples seen

    def add(self, layer: str, weights: torch.Tensor) -> None:
        """``weights``: [B, L, N] (per token) or [B, N] (per sample) routing weights of one forward."""
        if not self.record or self.task_index is None:
            return
        weights = weights.detach().float()
        if weights.dim() == 3:
            mask = self.token_mask
            if mask is None or mask.shape != weights.shape[:2]:
                mask = torch.ones(weights.shape[:2], dtype=torch.bool, device=weights.device)
            m = mask.to(weights.dtype).unsqueeze(-1)
            weights = (weights * m).sum(1) / m.sum(1).clamp_min(1.0)
        if layer not in self.sums:
            self.sums[layer] = torch.zeros(self.num_tasks, weights.shape[-1], device=weights.device)
            self.counts[layer] = torch.zeros(self.num_tasks, device=weights.device)
        self.sums[layer].index_add_(0, self.task_index, weights)
        self.counts[layer].index_add_(0, self.task_index, torch.ones_like(self.task_index, dtype=torch.float32))

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


class ILoRALinear(nn.Module):
    """A frozen linear layer plus I-LoRA: shared A, N zero-initialised B heads, per-token softmax router."""

    def __init__(
        self, base: nn.Linear, r: int, alpha: float, heads: int, dropout: float, ctx: RoutingContext, name: str
    ) -> None:
        super().__init__()
        self.base = base
        self.r, self.heads, self.scaling = r, heads, alpha / r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        # B_i is lora_B[:, i*r:(i+1)*r]; zero so that training starts from the backbone's own function.
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, heads * r))
        self.router = nn.Linear(base.in_features, heads, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.router.weight, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ctx, self.layer_name = ctx, name
        self.to(base.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base(x)
        ax = self.lora_A(self.dropout(x).to(self.lora_A.weight.dtype))
        weights = F.softmax(self.router(x.to(self.router.weight.dtype)), dim=-1, dtype=torch.float32)
        self.ctx.add(self.layer_name, weights)
        mixed = (weights.to(ax.dtype).unsqueeze(-1) * ax.unsqueeze(-2)).flatten(-2)  # [..., N * r]
        return result + (F.linear(mixed, self.lora_B) * self.scaling).to(result.dtype)


class MoELoRALinear(nn.Module):
    """A frozen linear layer plus MoE-LoRA: N experts of rank r / N, gated by a per-layer task embedding."""

    def __init__(
        self,
        base: nn.Linear,
        r: int,
        alpha: float,
        experts: int,
        dropout: float,
        te_dim: int,
        ctx: RoutingContext,
        name: str,
    ) -> None:
        super().__init__()
        self.base = base
        self.r, self.experts, self.scaling = r, experts, alpha / r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)  # expert i: rows i*r/N .. (i+1)*r/N
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.normal_(self.lora_A.weight, std=0.01)
        nn.init.zeros_(self.lora_B.weight)
        self.task_embedding = nn.Embedding(ctx.num_tasks, te_dim)
        self.gate = nn.Linear(te_dim, experts, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ctx, self.layer_name = ctx, name
        self.to(base.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ctx.task_index is None:
            raise RuntimeError("MoE-LoRA needs the batch's task indices (RoutingContext.task_index)")
        result = self.base(x)
        gate = F.softmax(self.gate(self.task_embedding(self.ctx.task_index)), dim=-1, dtype=torch.float32)  # [B, N]
        self.ctx.add(self.layer_name, gate)
        scale = gate.repeat_interleave(self.r // self.experts, dim=-1).to(self.lora_A.weight.dtype)  # [B, r]
        ax = self.lora_A(self.dropout(x).to(self.lora_A.weight.dtype))
        scale = scale.view(scale.shape[0], *([1] * (ax.dim() - 2)), scale.shape[-1])
        return result + (self.lora_B(ax * scale) * self.scaling).to(result.dtype)


def _targets(model: nn.Module, targets: list[str]) -> list[tuple[str, nn.Linear]]:
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    ]
    if not found:
        raise ValueError(f"no linear layer named {targets} in the backbone")
    return found


def apply_adapters(model: nn.Module, adapter: Any, ctx: RoutingContext) -> list[str]:
    """Freeze ``model`` and add the configured adapters in place; returns the adapted layer names.

    ``adapter`` has kind, r, alpha, dropout, heads, targets, task_embedding_dim (model.config.AdapterConfig).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    if adapter.kind == "none":
        return []
    found = _targets(model, list(adapter.targets))
    if adapter.kind == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=adapter.r,
            lora_alpha=adapter.alpha,
            lora_dropout=adapter.dropout,
            target_modules=list(adapter.targets),
            bias="none",
        )
        inject_adapter_in_model(config, model)
        for name, p in model.named_parameters():
            p.requires_grad_("lora_" in name)
        return [name for name, _ in found]
    for name, base in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if adapter.kind == "ilora":
            wrapped: nn.Module = ILoRALinear(base, adapter.r, adapter.alpha, adapter.heads, adapter.dropout, ctx, name)
        else:
            wrapped = MoELoRALinear(
                base, adapter.r, adapter.alpha, adapter.heads, adapter.dropout, adapter.task_embedding_dim, ctx, name
            )
        setattr(parent, child, wrapped)
    return [name for name, _ in found]
