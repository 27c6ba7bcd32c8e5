"""Training-step time and peak memory of LoRA, I-LoRA (N = 3) and MoE-LoRA at equal rank.

Sizes: ``tiny`` and ``larger`` are the built-in AV-LLM (tiny Llama, built-in encoders); ``crab`` and ``crabplus``
are the two recipes on tiny random checkpoints of their real architectures (crab_eval.model.tiny_checkpoints):
Crab = Llama + tokenizer with Crab's tokens + 24-layer CLIP (hidden states 14, 22, 23) + AST over the clip +
Q-Former projectors; Crab+ = the Qwen2.5-Omni thinker (audio tower, vision tower, language model), adapters on the
language layers. Their batches come from the models' own collators (prompt + answer, 10 segments of media).

Step times: the three adapters' models live in one process and their steps are interleaved (round robin), so that
the load of a shared machine hits them alike; the median is reported. Peak memory: each (size, adapter) in its own
subprocess; on CUDA the allocator's peak, on the CPU the growth of peak RSS over the steps (activations, gradients,
optimizer state; the model is loaded before the baseline is taken). The step is the full AV-LLM step (encoders,
projectors, backbone with adapters, backward, AdamW) on a synthetic batch. Prints a table and the ratios to LoRA;
it measures, never fails.

    .venv/bin/python benchmarks/bench_train.py                 # tiny and larger configs
    .venv/bin/python benchmarks/bench_train.py --sizes tiny --steps 20 --threads 2
    .venv/bin/python benchmarks/bench_train.py --sizes crab,crabplus --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

SIZES = {
    # name: backbone width/depth, batch, prompt and answer lengths (tokens, media excluded)
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "layers": 2,
        "heads": 4,
        "kv_heads": 2,
        "batch": 8,
        "prompt": 96,
        "answer": 24,
    },
    "larger": {
        "hidden_size": 512,
        "intermediate_size": 1376,
        "layers": 6,
        "heads": 8,
        "kv_heads": 4,
        "batch": 4,
        "prompt": 192,
        "answer": 32,
    },
}
RECIPES = {"crab": {"batch": 4, "prompt": 96, "answer": 24}, "crabplus": {"batch": 4, "prompt": 96, "answer": 24}}
ADAPTERS = {  # equal rank r = 12 (divisible by 3 experts, as MoE-LoRA requires)
    "lora": {"kind": "lora", "r": 12, "alpha": 24.0, "heads": 1},
    "ilora": {"kind": "ilora", "r": 12, "alpha": 24.0, "heads": 3},
    "moelora": {"kind": "moelora", "r": 12, "alpha": 24.0, "heads": 3},
}


def recipe_model(size: str, adapter: str, folder: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a recipe on tiny random checkpoints written to ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2_5OmniThinkerForConditionalGeneration

    from crab_eval.model import tiny_checkpoints as tiny
    from crab_eval.model.avllm import AVLLM
    from crab_eval.model.config import AdapterConfig, EncoderConfig, ModelConfig, OmniConfig
    from crab_eval.model.omni import OmniAVLLM
    from crab_eval.model.tokenizer import extend_tokenizer, load_tokenizer

    spec = AdapterConfig(**ADAPTERS[adapter], dropout=0.05)
    torch.manual_seed(0)
    if size == "crabplus":
        path = str(tiny.qwen_omni_checkpoint(f"{folder}/omni", mels=64))
        cfg = ModelConfig(arch="qwen2_5_omni", backbone=path, omni=OmniConfig(image_size=32))
        thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path)
        tok = load_tokenizer(path)
        return OmniAVLLM(cfg, spec, thinker, tok, ["a", "b"]), tok
    llama = str(tiny.llama_checkpoint(f"{folder}/llama"))
    clip = str(tiny.clip_checkpoint(f"{folder}/clip", image_size=32))
    ast = str(tiny.ast_checkpoint(f"{folder}/ast", mels=64, max_length=320))
    tok = extend_tokenizer(load_tokenizer(llama), 6)
    backbone = AutoModelForCausalLM.from_pretrained(llama)
    backbone.resize_token_embeddings(len(tok))
    cfg = ModelConfig(
        backbone=llama,
        train_embeddings=True,
        visual_encoder=EncoderConfig(type="hf", path=clip, hidden_layers=[14, 22, 23], image_size=32),
        audio_encoder=EncoderConfig(type="hf", path=ast, window="clip"),
        queries=4,
        projector_dim=32,
    )
    return AVLLM(cfg, spec, backbone, tok, ["a", "b"]), tok


def recipe_batch(model: Any, tok: Any, spec: dict, generator: Any) -> dict:
    """A training batch from the model's own collator: Crab's prompt + words, an answer, 10 segments of media
    (crab_eval.media's default log-mel slice and frame size)."""
    import torch

    from crab_eval.model.data import Example
    from crab_eval.tasks.base import CRAB_PREFIX

    words = ("the", "dog", "barks", "at", "a", "red", "car", "near", "an", "old", "church", "bell", "while", "music")
    examples = []
    for i in range(spec["batch"]):
        prompt = " ".join(words[(i + k) % len(words)] for k in range(spec["prompt"]))
        answer = " ".join(words[(i * 3 + k) % len(words)] for k in range(spec["answer"]))
        audio = torch.randn(10, 64, 32, generator=generator)
        frames = torch.rand(10, 3, 64, 64, generator=generator)
        examples.append(Example(i % 2, None, None, CRAB_PREFIX + prompt, answer, audio, frames))
    return model.collator(tok, examples[0], 8192).train_batch(examples)


def build_case(size: str, adapter: str) -> tuple[Any, Any, dict]:
    """(step function, device, info) for one (size, adapter): the model, a synthetic batch and AdamW."""
    import tempfile

    import torch

    from crab_eval.model.avllm import AVLLM, tiny_llama
    from crab_eval.model.config import AdapterConfig, ModelConfig
    from crab_eval.model.tokenizer import build_tokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if size in RECIPES:
        with tempfile.TemporaryDirectory() as folder:
            model, tok = recipe_model(size, adapter, folder)
            g = torch.Generator().manual_seed(0)
            return _case(model, recipe_batch(model, tok, RECIPES[size], g), device)
    spec = SIZES[size]
    cfg = ModelConfig(**{k: spec[k] for k in ("hidden_size", "intermediate_size", "layers", "heads", "kv_heads")})
    cfg.projector_dim = min(256, spec["hidden_size"])
    tok = build_tokenizer(["the answer is a dog"], 512, cfg.mask_tokens)
    torch.manual_seed(0)
    model = AVLLM(cfg, AdapterConfig(**ADAPTERS[adapter], dropout=0.05), tiny_llama(cfg, tok), tok, ["a", "b"])
    b, segments = spec["batch"], 10
    n_media = model.n_media_tokens(segments)
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(20, len(tok), (b, spec["prompt"]), generator=g)
    media = torch.cat([torch.full((b, n_media), model.video_id), torch.full((b, n_media), model.audio_id)], 1)
    answer = torch.randint(20, len(tok), (b, spec["answer"]), generator=g)
    ids = torch.cat([prompt[:, :4], media, prompt[:, 4:], answer], 1)
    labels = torch.full_like(ids, -100)
    labels[:, -spec["answer"] :] = answer
    batch = {
        "input_ids": ids,
        "labels": labels,
        "attention_mask": torch.ones_like(ids),
        "task_index": torch.arange(b) % 2,
        "audio": torch.randn(b, segments, 64, 32, generator=g),  # crab_eval.media's default log-mel slice
        "frames": torch.rand(b, segments, 3, 64, 64, generator=g),  # and frame size
    }
    return _case(model, batch, device)


def _case(model: Any, batch: dict, device: Any) -> tuple[Any, Any, dict]:
    import torch

    model.to(device).train()
    batch = {k: v.to(device) for k, v in batch.items()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    in_llm = ("backbone.", "thinker.model.language_model.")  # adapters live in the language model
    adapter_params = sum(
        p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith(in_llm) and "embed" not in n
    )

    def step() -> None:
        out = model(batch)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seq_len = int(batch["input_ids"].shape[1])
    return step, device, {"adapter_params": adapter_params, "seq_len": seq_len, "device": device.type}


def time_round_robin(size: str, adapters: list[str], steps: int, warmup: int) -> dict[str, dict]:
    """Median step time per adapter, the adapters' steps interleaved so that machine load hits them alike."""
    cases = {a: build_case(size, a) for a in adapters}
    for step, _, _ in cases.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {a: [] for a in adapters}
    for _ in range(steps):
        for a, (step, _, _) in cases.items():
            t0 = time.perf_counter()
            step()
            times[a].append(time.perf_counter() - t0)
    return {a: {**cases[a][2], "step_ms": 1000 * statistics.median(times[a])} for a in adapters}


def peak_memory(size: str, adapter: str, steps: int) -> float:
    """MB: CUDA allocator peak, or on the CPU the growth of peak RSS over the model-loaded baseline."""
    import torch

    step, device, _ = build_case(size, adapter)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_start = _current_rss_mb()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_start  # ru_maxrss: KiB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,larger")
    parser.add_argument("--adapters", default="lora,ilora,moelora")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:  # internal: the peak memory of one case, in a fresh process
        size, adapter = args.one.split(":")
        print(json.dumps({"peak_mb": peak_memory(size, adapter, max(2, args.warmup))}))
        return
    adapters = args.adapters.split(",")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rows = []
    for size in args.sizes.split(","):
        timed = time_round_robin(size, adapters, args.steps, args.warmup)
        for adapter in adapters:
            cmd = [sys.executable, __file__, "--one", f"{size}:{adapter}", "--warmup", str(args.warmup)]
            cmd += ["--threads", str(args.threads)] if args.threads else []
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            r = {"size": size, "adapter": adapter, **timed[adapter], **json.loads(out.strip().splitlines()[-1])}
            rows.append(r)
            print(
                f"{size:7s} {adapter:8s} step {r['step_ms']:9.1f} ms  peak {r['peak_mb']:8.1f} MB  "
                f"adapter params {r['adapter_params']:9d}  seq {r['seq_len']}  ({r['device']})",
                flush=True,
            )
    print("\nratios to lora (median step time, peak memory):")
    for size in args.sizes.split(","):
        ref = next((r for r in rows if r["size"] == size and r["adapter"] == "lora"), None)
        if ref is None:
            continue
        for r in rows:
            if r["size"] == size and r["adapter"] != "lora":
                ratio = r["step_ms"] / ref["step_ms"]
                note = "  (target <= 1.2x)" if r["adapter"] == "ilora" else ""
                print(
                    f"  {size:7s} {r['adapter']:8s} time x{ratio:.2f}  memory x{r['peak_mb'] / ref['peak_mb']:.2f}"
                    f"{note}"
                )


if __name__ == "__main__":
    main()
