"""Crab+'s recipe: a tiny random Qwen2.5-Omni checkpoint (the thinker: audio tower, vision tower, language model;
saved as the full model, with a locally trained Qwen2 tokenizer) trained single-task and unified with LoRA, I-LoRA
and MoE-LoRA on its language layers through the same trainer: logs, router weights, affinity, resume, predict,
score, transfer. Media layout and prompt are checked against Qwen2-VL's image processor and Crab+'s prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from crab_eval.errors import CrabEvalError
from crab_eval.model import checkpoint as ck
from crab_eval.model import tiny_checkpoints as tiny
from crab_eval.model.config import config_from_dict
from crab_eval.model.omni import omni_prompt, patchify_video
from crab_eval.model.testing import MELS, fake_features, write_toy, write_toy_mask
from crab_eval.model.train import train

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("one_torch_thread", "model_toy_tasks")]
STEPS = 4
CONFIG = Path(__file__).parent.parent / "configs" / "crabplus_omni_ilora.yaml"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crab_eval.layouts.ave import OFFICIAL_CATEGORIES as CAT
    from crab_eval.layouts.ave import write_dataset

    root = tmp_path_factory.mktemp("omni")
    write_toy(root / "toy", "val", 12)
    write_toy(root / "toy", "test", 4, seed=1)
    rows = [(CAT[i % 4], f"vid{i}", i % 4, 6 + i % 4) for i in range(12)]
    write_dataset(root / "ave", {"train": rows[:8], "test": rows[8:]})
    tiny.qwen_omni_checkpoint(root / "omni", mels=MELS)
    return root


def omni_config(root: Path, run: str, tasks: list[str], adapter: dict, **train_kw: object) -> dict:
    """The committed Crab+ config with the tiny checkpoint, the test data and a CPU-sized run (fp32, r = 8)."""
    data = yaml.safe_load(CONFIG.read_text())
    splits = {"toy": "val", "ave": "train"}
    data["run_dir"], data["seed"] = str(root / run), 1
    data["tasks"] = [{"task": t, "data": str(root / t), "split": splits[t]} for t in tasks]
    data["model"].update(backbone=str(root / "omni"), dtype="float32", omni={"image_size": 16})
    data["adapter"].update(r=8, alpha=16, **adapter)
    data["train"].update(
        steps=STEPS,
        batch_size=4,
        grad_accum=2,
        gradient_checkpointing=False,
        lr=2e-3,
        mixed_precision="no",
        checkpoint_every=2,
        router_log_every=2,
        affinity_every=2,
    )
    data["train"].update(train_kw)
    return data


def test_the_committed_config_keeps_crab_plus_choices() -> None:
    from crab_eval.registry import get_task

    cfg = config_from_dict(yaml.safe_load(CONFIG.read_text()))
    assert (cfg.model.arch, cfg.model.dtype, cfg.model.omni.image_size) == ("qwen2_5_omni", "bfloat16", 224)
    a, t = cfg.adapter, cfg.train
    assert (a.kind, a.r, a.alpha, a.dropout, a.heads) == ("ilora", 128, 256.0, 0.1, 3)
    assert (t.lr, t.schedule, t.warmup_ratio, t.mixed_precision, t.gradient_checkpointing) == (
        1e-4,
        "cosine",
        0.03,
        "bf16",
        True,
    )
    assert all(get_task(s.task).text_predictions for s in cfg.tasks)  # no mask task: Crab+ segments with SAM2


@pytest.fixture(scope="module")
def unified(root: Path) -> Path:
    cfg = omni_config(root, "unified", ["toy", "ave"], {"kind": "ilora"})
    return train(config_from_dict(cfg), fake_features, progress=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / ck.WEIGHTS))


def test_video_patches_are_qwen2vl_image_processor_patches() -> None:
    """A still image as a 2-frame clip: the patches (values and order) and grid equal those of transformers'
    Qwen2-VL image processor, which tiles a single image over the temporal patch."""
    from transformers import Qwen2VLImageProcessorPil

    from crab_eval.model.encoders import CLIP_MEAN, CLIP_STD

    image = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(0))
    proc = Qwen2VLImageProcessorPil(patch_size=4, merge_size=2, temporal_patch_size=2, min_pixels=64, max_pixels=4096)
    ref = proc(images=[image.numpy()], do_rescale=False, do_resize=False, input_data_format="channels_first")
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    clip = ((image - mean) / std).expand(1, 2, 3, 16, 24)
    patches, grid = patchify_video(clip, patch=4, temporal=2, merge=2)
    assert grid == list(ref["image_grid_thw"][0]) == [1, 4, 6]
    torch.testing.assert_close(patches, torch.as_tensor(ref["pixel_values"]).float(), rtol=1e-5, atol=1e-5)
    odd, grid = patchify_video(torch.rand(1, 3, 3, 8, 8), patch=4, temporal=2, merge=2)  # last frame repeated
    assert grid == [2, 2, 2] and torch.equal(odd.view(8, 3, 2, 16)[4:, :, 0], odd.view(8, 3, 2, 16)[4:, :, 1])


def test_prompt_is_crab_plus_chat_layout() -> None:
    from crab_eval.tasks.base import CRAB_PREFIX

    expected = (
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nThis is a video and an audio:"
        "<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>What is it?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert omni_prompt(CRAB_PREFIX + "What is it?", "SYS") == expected
    own = omni_prompt("Listen: <audio_start><audio><audio_end> and watch <video_start><video><video_end>", "S")
    assert "Listen: <|audio_bos|><|AUDIO|><|audio_eos|> and watch <|vision_bos|><|VIDEO|><|vision_eos|>" in own


def test_adapters_sit_on_the_language_layers_only(root: Path, unified: Path) -> None:
    model, tok, _ = ck.load_for_inference(unified)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("thinker.model.language_model.layers.") for n in trainable)
    assert all(n.endswith(("lora_A.weight", "lora_B", "router.weight")) for n in trainable)
    assert len(model.adapted_layers) == 2 * 7  # 2 layers x q, k, v, o, gate, up, down
    assert not any(p.requires_grad for p in model.thinker.model.audio_tower.parameters())
    assert type(tok).__name__ == "Qwen2Tokenizer" and tok.eos_token == "<|im_end|>"
    s, t = 10, 24
    assert model.media_tokens(s, s * t) == (5 * (16 // 4) ** 2 // 4, ((s * t - 1) // 2 + 1 - 2) // 2 + 1)


def test_unified_run_logs_router_affinity_and_resumes(root: Path, unified: Path) -> None:
    assert [r["step"] for r in read_jsonl(unified / "train_log.jsonl")] == [1, 2, 3, 4]
    affinity = read_jsonl(unified / "affinity.jsonl")
    kinds = [(r["step"], r["kind"]) for r in affinity]
    assert kinds == [(0, "grad_cosine"), (0, "lookahead"), (2, "grad_cosine"), (2, "lookahead")]
    assert affinity[0]["matrix"][0][0] == pytest.approx(1.0, abs=1e-5)
    router = read_jsonl(unified / "router_weights.jsonl")
    layers = router[0]["layers"]
    assert len(layers) == 14 and all(name.startswith("layers.") for name in layers)
    w = next(x for x in router[0]["weights"] if x is not None)
    assert all(sum(h) == pytest.approx(1.0, abs=1e-4) for h in w)  # I-LoRA's per-token softmax over N = 3 heads
    cfg = omni_config(root, "resumed", ["toy", "ave"], {"kind": "ilora"}, stop_after=2)
    train(config_from_dict(cfg), fake_features, progress=False)
    cfg["train"].pop("stop_after")
    train(config_from_dict(cfg), fake_features, progress=False)
    a, b = (weights(r / "checkpoints" / f"step-{STEPS:07d}") for r in (unified, root / "resumed"))
    assert a.keys() == b.keys() and any(float(v.abs().sum()) > 0 for k, v in a.items() if "lora_B" in k)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


def test_single_lora_and_unified_predict_score_transfer(root: Path, unified: Path) -> None:
    from crab_eval.model.predict import predict
    from crab_eval.scoring import score
    from crab_eval.transfer import compute_transfer

    cfg = omni_config(root, "single", ["ave"], {"kind": "lora"}, affinity_every=0, router_log_every=0)
    single = train(config_from_dict(cfg), fake_features, progress=False)
    assert all("lora_" in k for k in weights(single / "checkpoints" / f"step-{STEPS:07d}"))  # peft's LoRA
    results = {}
    for name, run in (("single", single), ("unified", unified)):
        out = root / f"{name}.jsonl"
        predict(run, "ave", root / "ave", "test", out, 3, 5, features=fake_features, progress=False)
        assert [set(r) for r in read_jsonl(out)] == [{"id", "text"}] * 4
        results[name] = score("ave", root / "ave", "test", out)
    (row,) = compute_transfer([results["single"]], [results["unified"]], n_boot=50).tasks
    main = results["single"].main_metric
    assert row.abs_change == pytest.approx(results["unified"].metrics[main] - results["single"].metrics[main])
    out = root / "toy.jsonl"
    assert predict(unified, "toy", root / "toy", "test", out, 8, 4, features=fake_features, progress=False) == 4
    assert score("toy", root / "toy", "test", out).n_missing == 0


def test_moelora_unified_and_untrained_task_refused(root: Path) -> None:
    from crab_eval.model.predict import predict

    cfg = omni_config(root, "moe", ["toy", "ave"], {"kind": "moelora", "heads": 2}, steps=2, affinity_every=0)
    run = train(config_from_dict(cfg), fake_features, progress=False)
    state = weights(run / "checkpoints" / "step-0000002")
    assert any("task_embedding" in k for k in state) and any(k.endswith("gate.weight") for k in state)
    router = read_jsonl(run / "router_weights.jsonl")
    assert router[0]["tasks"] == ["toy", "ave"] and len(router[0]["weights"][0][0]) == 2  # the task gate
    out = root / "moe_toy.jsonl"
    assert predict(run, "toy", root / "toy", "test", out, 8, 3, features=fake_features, progress=False) == 4
    cfg = omni_config(root, "moe_single", ["ave"], {"kind": "moelora", "heads": 2}, steps=1, affinity_every=0)
    single = train(config_from_dict(cfg), fake_features, progress=False)
    with pytest.raises(CrabEvalError, match="not trained on 'toy'"):
        predict(single, "toy", root / "toy", "test", out, features=fake_features, progress=False)


def test_gradient_checkpointing_changes_nothing_but_memory(root: Path) -> None:
    runs = []
    for ckpt in (False, True):
        cfg = omni_config(root, f"gc_{ckpt}", ["toy"], {"kind": "ilora"}, steps=2, gradient_checkpointing=ckpt)
        run = train(config_from_dict(cfg), fake_features, progress=False)
        runs.append(weights(run / "checkpoints" / "step-0000002"))
    for k in runs[0]:
        torch.testing.assert_close(runs[1][k], runs[0][k], rtol=1e-5, atol=1e-6, msg=k)


def test_mask_tasks_and_wrong_features_are_refused(root: Path) -> None:
    cfg = omni_config(root, "mask", ["toy"], {"kind": "lora"})
    write_toy_mask(root / "mask", "train", 2)
    cfg["tasks"].append({"task": "toy_mask", "data": str(root / "mask"), "split": "train"})
    with pytest.raises(CrabEvalError, match="no mask head"):
        train(config_from_dict(cfg), fake_features, progress=False)
    with pytest.raises(CrabEvalError, match=r"needs model\.backbone"):
        config_from_dict({**cfg, "model": {"arch": "qwen2_5_omni", "backbone": None}})

    def wide_mels(task, data_dir, sample):  # 64 mel bins where the audio tower reads MELS
        out = fake_features(task, data_dir, sample)
        return {"audio": out["audio"].repeat(1, 4, 1), "frames": out["frames"]}

    cfg = omni_config(root, "mels", ["toy"], {"kind": "lora"}, steps=1)
    with pytest.raises(CrabEvalError, match="mel bins"):
        train(config_from_dict(cfg), wide_mels, progress=False)
