"""The paths to scale: gradient accumulation (k micro-batches = one batch k times the size), mixed-precision
selection, DeepSpeed's batch arithmetic from configs/accelerate_zero2.yaml, and ZeRO-2 itself on one CPU process
(engine, optimizer partitions, checkpoint and resume) where DeepSpeed is installed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from launching import ENV, launch_command

from crab_eval.errors import CrabEvalError
from crab_eval.model import checkpoint as ck
from crab_eval.model.config import config_from_dict
from crab_eval.model.testing import fake_features, write_toy, write_toy_mask
from crab_eval.model.train import deepspeed_batch, resolve_mixed_precision, train

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("one_torch_thread", "model_toy_tasks")]
ROOT = Path(__file__).parent.parent


def run_config(root: Path, run: str, dropout: float = 0.0, **train_kw: object) -> dict:
    return {
        "run_dir": str(root / run),
        "seed": 2,
        "tasks": [
            {"task": "toy", "data": str(root / "toy"), "split": "val"},
            {"task": "toy_mask", "data": str(root / "mask"), "split": "train"},
        ],
        "adapter": {"kind": "ilora", "dropout": dropout},
        "train": {"batch_size": 8, "lr": 3e-3, "warmup_ratio": 0.0, "router_log_every": 2, **train_kw},
    }


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(ck.checkpoint_dir(run, step) / ck.WEIGHTS))


def test_accumulated_micro_batches_equal_one_large_batch(tmp_path: Path) -> None:
    """4 micro-batches of 2 give the gradient of one batch of 8 (the same examples: the step's global batch).
    Compared through AdamW's first moment after the first step, exp_avg = (1 - beta1) * gradient, which keeps the
    gradient's scale (AdamW's update does not, and amplifies float noise on parameters whose gradient is zero in
    exact arithmetic); and the logged losses and router counts of two steps."""
    write_toy(tmp_path / "toy", "val", 16)
    write_toy_mask(tmp_path / "mask", "train", 6)
    runs = []
    for accum in (1, 4):
        cfg = run_config(tmp_path, f"accum{accum}", steps=2, grad_accum=accum, checkpoint_every=1, max_grad_norm=0)
        runs.append(train(config_from_dict(cfg), features=fake_features, progress=False))
    one, four = (
        torch.load(ck.checkpoint_dir(r, 1) / "optimizer.pt", map_location="cpu", weights_only=True)["state"]
        for r in runs
    )
    assert one.keys() == four.keys() and len(one) > 50
    for i in one:
        m = one[i]["exp_avg"]
        torch.testing.assert_close(four[i]["exp_avg"], m, rtol=1e-4, atol=1e-5 * float(m.abs().max()) + 1e-12)
    logs = [[json.loads(x) for x in (r / "train_log.jsonl").read_text().splitlines()] for r in runs]
    assert [r["loss"] for r in logs[1]] == pytest.approx([r["loss"] for r in logs[0]], rel=1e-5)
    routers = [json.loads((r / "router_weights.jsonl").read_text()) for r in runs]
    assert routers[0]["counts"] == routers[1]["counts"] and sum(routers[0]["counts"]) == 2 * 8


def test_micro_batches_must_divide_the_batch(tmp_path: Path) -> None:
    with pytest.raises(CrabEvalError, match="micro-batches"):
        config_from_dict(run_config(tmp_path, "r", grad_accum=3))


def test_mixed_precision_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [  # (cuda, bf16 supported, asked) -> given to accelerate
        ((False, False, "auto"), "no"),
        ((True, True, "auto"), "bf16"),
        ((True, False, "auto"), "fp16"),
        ((True, True, "fp16"), "fp16"),
        ((False, False, "bf16"), "bf16"),  # CPU autocast has bf16
        ((True, True, "no"), "no"),
    ]
    for (cuda, bf16, asked), expected in cases:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert resolve_mixed_precision(asked) == expected, (cuda, bf16, asked)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(CrabEvalError, match="no bf16"):
        resolve_mixed_precision("bf16")


def zero2_plugin_config() -> dict:
    """configs/accelerate_zero2.yaml read by accelerate's own config loader, turned into its DeepSpeed plugin's
    config (what ``accelerate launch --config_file`` hands the Accelerator)."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin, DistributedType

    cluster = load_config_from_file(str(ROOT / "configs" / "accelerate_zero2.yaml"))
    assert cluster.distributed_type == DistributedType.DEEPSPEED and cluster.deepspeed_config["zero_stage"] == 2
    return dict(DeepSpeedPlugin(**cluster.deepspeed_config).deepspeed_config)


def test_deepspeed_batch_arithmetic_for_crabs_global_batch() -> None:
    for gpus, accum, micro in ((8, 8, 4), (4, 16, 4), (2, 32, 4), (8, 1, 32)):  # 256 = GPUs x accumulation x micro
        ds = zero2_plugin_config()
        assert ds["zero_optimization"]["stage"] == 2 and ds["train_micro_batch_size_per_gpu"] == "auto"
        assert deepspeed_batch(ds, 256, gpus, accum, 1.0) == micro
        assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"]) == (256, micro)
        assert ds["gradient_accumulation_steps"] == accum and ds["gradient_clipping"] == 1.0
    with pytest.raises(CrabEvalError, match="3 processes"):
        deepspeed_batch(zero2_plugin_config(), 256, 3, 1, 1.0)
    fixed = {**zero2_plugin_config(), "train_micro_batch_size_per_gpu": 8}
    with pytest.raises(CrabEvalError, match="train_micro_batch_size_per_gpu = 8"):
        deepspeed_batch(fixed, 256, 8, 8, 1.0)
    with pytest.raises(CrabEvalError, match="gradient_clipping"):
        deepspeed_batch(zero2_plugin_config(), 256, 8, 8, 0.5)


@pytest.mark.slow
def test_zero2_on_one_cpu_process_resumes_and_matches_plain_adamw(tmp_path: Path) -> None:
    """configs/accelerate_zero2.yaml on one CPU process (DeepSpeed's CPU accelerator): a run stopped after 2 of 4
    steps and resumed from the engine's checkpoint ends where the plain (non-DeepSpeed) run ends; the checkpoint
    holds the optimizer partition and no frozen weight."""
    pytest.importorskip("deepspeed")
    write_toy(tmp_path / "toy", "val", 16)
    write_toy_mask(tmp_path / "mask", "train", 6)
    kw = {"steps": 4, "grad_accum": 2, "checkpoint_every": 2}
    cfg = run_config(tmp_path, "zero2", dropout=0.1, stop_after=2, **kw)
    launch_args = ["--config_file", str(ROOT / "configs" / "accelerate_zero2.yaml"), "--num_processes", "1"]
    for session in (1, 2):
        cmd = launch_command(tmp_path, f"session{session}", cfg, *launch_args, "--mixed_precision", "no")
        proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        cfg["train"].pop("stop_after", None)
    plain = train(config_from_dict(run_config(tmp_path, "plain", dropout=0.1, **kw)), fake_features, progress=False)
    zero2 = tmp_path / "zero2"
    a, b = weights(plain, 4), weights(zero2, 4)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-4, msg=k)
    log = [json.loads(x) for x in (zero2 / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    state = ck.checkpoint_dir(zero2, 2) / ck.DEEPSPEED / ck.DEEPSPEED_TAG
    assert (state / "zero_pp_rank_0_mp_rank_00_optim_states.pt").is_file()
    module = torch.load(state / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=True)["module"]
    assert set(module) == set(weights(zero2, 2))  # the trainable weights only: the frozen backbone is left out
    assert not (ck.checkpoint_dir(zero2, 2) / "optimizer.pt").exists()
