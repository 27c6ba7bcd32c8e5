"""Adapter maths: I-LoRA with one head equals peft's LoRA; I-LoRA and MoE-LoRA equal plain per-head/per-expert loops
(written here from Crab's peft_hyper formulas, independently of the vectorised code); router statistics per task."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from crab_eval.model.adapters import ILoRALinear, MoELoRALinear, RoutingContext, apply_adapters
from crab_eval.model.config import DEFAULT_TARGETS

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("one_torch_thread")]


def tiny_llama(seed: int = 0) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg).eval()


def adapter(kind: str, heads: int = 3, r: int = 4, dropout: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(
        kind=kind, r=r, alpha=8.0, dropout=dropout, heads=heads, targets=list(DEFAULT_TARGETS), task_embedding_dim=6
    )


def test_ilora_with_one_head_equals_peft_lora_on_a_llama() -> None:
    base = tiny_llama()
    lora_model, ilora_model = copy.deepcopy(base), copy.deepcopy(base)
    apply_adapters(lora_model, adapter("lora"), RoutingContext(1))
    ctx = RoutingContext(1)
    apply_adapters(ilora_model, adapter("ilora", heads=1), ctx)
    gen = torch.Generator().manual_seed(1)
    n = 0
    for name, module in ilora_model.named_modules():
        if isinstance(module, ILoRALinear):
            peft_layer = lora_model.get_submodule(name)
            a = torch.randn(module.lora_A.weight.shape, generator=gen) * 0.2
            b = torch.randn(module.lora_B.shape, generator=gen) * 0.2  # non-zero B: the adapters really act
            with torch.no_grad():
                module.lora_A.weight.copy_(a)
                module.lora_B.copy_(b)
                peft_layer.lora_A["default"].weight.copy_(a)
                peft_layer.lora_B["default"].weight.copy_(b)
            n += 1
    assert n == 2 * len(DEFAULT_TARGETS)
    ids = torch.randint(0, 50, (2, 9), generator=gen)
    with torch.no_grad():
        ref = lora_model(input_ids=ids).logits
        got = ilora_model(input_ids=ids).logits
        plain = base(input_ids=ids).logits
    assert not torch.allclose(ref, plain, atol=1e-3)  # the adapters change the output...
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)  # ...identically


def test_ilora_equals_a_loop_over_heads() -> None:
    torch.manual_seed(0)
    base = nn.Linear(10, 7)
    layer = ILoRALinear(base, r=4, alpha=8.0, heads=3, dropout=0.0, ctx=RoutingContext(1), name="x")
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(2, 5, 10)
    a, router = layer.lora_A.weight, layer.router.weight
    heads = [layer.lora_B[:, i * 4 : (i + 1) * 4] for i in range(3)]
    # Crab: result += route_weight[:, :, i] * lora_B_i(lora_A(dropout(x))) * scaling, per head
    expected = base(x)
    w = torch.softmax(x @ router.T, dim=-1)
    for i in range(3):
        expected = expected + w[..., i : i + 1] * ((x @ a.T) @ heads[i].T) * (8.0 / 4)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_moelora_equals_a_loop_over_experts() -> None:
    torch.manual_seed(0)
    base = nn.Linear(10, 7)
    ctx = RoutingContext(3)
    layer = MoELoRALinear(base, r=6, alpha=12.0, experts=3, dropout=0.0, te_dim=5, ctx=ctx, name="x")
    with torch.no_grad():
        layer.lora_B.weight.normal_()
        layer.lora_A.weight.normal_()
    x = torch.randn(2, 4, 10)
    ctx.task_index = torch.tensor([2, 0])
    # Crab's mmoelora: expert i has A_i (rank r/N rows) and B_i; result += B_i(A_i x) * scaling * gate_i(task)
    gate = torch.softmax(layer.task_embedding.weight[ctx.task_index] @ layer.gate.weight.T, dim=-1)  # [B, N]
    expected = base(x)
    for i in range(3):
        a_i = layer.lora_A.weight[2 * i : 2 * i + 2]
        b_i = layer.lora_B.weight[:, 2 * i : 2 * i + 2]
        expected = expected + ((x @ a_i.T) @ b_i.T) * 2.0 * gate[:, i].view(2, 1, 1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["lora", "ilora", "moelora"])
def test_adapters_start_as_the_frozen_backbone(kind: str) -> None:
    base = tiny_llama()
    model = copy.deepcopy(base)
    ctx = RoutingContext(2)
    ctx.task_index = torch.tensor([0, 1])
    apply_adapters(model, adapter(kind, heads=2), ctx)
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, base(input_ids=ids).logits)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora" in n or "router" in n or "gate" in n or "task_embedding" in n) for n in trainable)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert len(frozen) == len(list(base.parameters()))  # exactly the backbone's own weights stay frozen


def test_router_statistics_are_per_task_means_over_real_tokens() -> None:
    ctx = RoutingContext(2)
    ctx.record = True
    ctx.task_index = torch.tensor([1, 0, 1])
    ctx.token_mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    w = torch.tensor(
        [
            [[0.2, 0.8], [0.4, 0.6], [9.0, 9.0]],  # padding token ignored: mean (0.3, 0.7)
            [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],  # mean (0.5, 0.5)
            [[0.9, 0.1], [9.0, 9.0], [9.0, 9.0]],  # mean (0.9, 0.1)
        ]
    )
    ctx.add("l", w)
    torch.testing.assert_close(ctx.sums["l"], torch.tensor([[0.5, 0.5], [1.2, 0.8]]))
    torch.testing.assert_close(ctx.counts["l"], torch.tensor([1.0, 2.0]))
    ctx.record = False
    ctx.add("l", w)  # not recording: unchanged
    torch.testing.assert_close(ctx.counts["l"], torch.tensor([1.0, 2.0]))
