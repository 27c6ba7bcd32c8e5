"""Training end to end on a tiny unified model (toy text task + toy mask task, fake features): logs, affinity file,
checkpoints, resume equal to an uninterrupted run, predictions consumed by the prediction reader, the CLI."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import torch

from crab_eval.errors import CrabEvalError
from crab_eval.model import checkpoint as ck
from crab_eval.model.config import config_from_dict, load_config
from crab_eval.model.testing import fake_features, write_toy, write_toy_mask
from crab_eval.model.train import train
from crab_eval.predictions import read_predictions

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("one_torch_thread", "model_toy_tasks")]
STEPS = 4


def make_config(root: Path, run: str, **train_kw: object) -> dict:
    return {
        "run_dir": str(root / run),
        "seed": 3,
        "tasks": [
            {"task": "toy", "data": str(root / "toy"), "split": "val", "weight": 1.0},
            {"task": "toy_mask", "data": str(root / "mask"), "split": "train", "weight": 1.0},
        ],
        "adapter": {"kind": "ilora", "dropout": 0.1},
        "train": {
            "steps": STEPS,
            "batch_size": 4,
            "lr": 2e-3,
            "checkpoint_every": 2,
            "affinity_every": 2,
            "router_log_every": 2,
            "warmup_ratio": 0.25,
            **train_kw,
        },
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    write_toy(root / "toy", "val", 16)
    write_toy(root / "toy", "test", 5, seed=1)
    write_toy_mask(root / "mask", "train", 8)
    write_toy_mask(root / "mask", "test", 3, seed=1)
    return root


@pytest.fixture(scope="module")
def full_run(root: Path) -> Path:
    return train(config_from_dict(make_config(root, "full")), features=fake_features, progress=False)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / ck.WEIGHTS))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_folder_logs_and_affinity_format(full_run: Path) -> None:
    assert sorted(p.name for p in (full_run / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    log = read_jsonl(full_run / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(set(r["tasks"]) <= {"toy", "toy_mask"} and r["loss"] > 0 for r in log)
    rows = read_jsonl(full_run / "affinity.jsonl")
    assert [(r["step"], r["kind"]) for r in rows] == [
        (0, "grad_cosine"),
        (0, "lookahead"),
        (2, "grad_cosine"),
        (2, "lookahead"),
    ]
    for r in rows:
        assert set(r) == {"step", "kind", "tasks", "matrix"} and r["tasks"] == ["toy", "toy_mask"]
        assert len(r["matrix"]) == 2 and all(len(row) == 2 for row in r["matrix"])
    cos = rows[0]["matrix"]
    assert cos[0][0] == pytest.approx(1.0, abs=1e-5) and cos[0][1] == pytest.approx(cos[1][0])
    look = rows[1]["matrix"]
    assert look[0][0] > 0 and look[1][1] > 0  # a step on task i lowers task i's own loss
    router = read_jsonl(full_run / "router_weights.jsonl")
    assert [r["step"] for r in router] == [2, 4]
    w = next(x for x in router[0]["weights"] if x is not None)
    assert len(w) == 14 and all(len(h) == 3 and sum(h) == pytest.approx(1.0, abs=1e-4) for h in w)


def test_checkpoint_holds_only_trainable_weights(full_run: Path) -> None:
    state = weights(full_run / "checkpoints" / "step-0000004")
    assert state and not any(k.endswith("base.weight") or "embed_tokens" in k for k in state)
    assert any("lora_B" in k for k in state) and any("router" in k for k in state)
    assert any(k.startswith("mask_decoder.") for k in state) and any(k.startswith("video_proj.") for k in state)
    assert any(float(v.abs().sum()) > 0 for k, v in state.items() if "lora_B" in k)  # B left zero init: trained


def test_resume_ends_with_the_same_weights(root: Path, full_run: Path) -> None:
    cfg = make_config(root, "resumed", stop_after=STEPS // 2)
    train(config_from_dict(cfg), features=fake_features, progress=False)
    first_half = (root / "resumed" / "train_log.jsonl").read_text()
    assert [r["step"] for r in read_jsonl(root / "resumed" / "train_log.jsonl")] == [1, 2]
    cfg["train"].pop("stop_after")
    train(config_from_dict(cfg), features=fake_features, progress=False)
    log = (root / "resumed" / "train_log.jsonl").read_text()
    assert log.startswith(first_half)  # steps 1-2 kept as written (not retrained), 3-4 appended once
    assert [r["step"] for r in read_jsonl(root / "resumed" / "train_log.jsonl")] == [1, 2, 3, 4]
    a = weights(full_run / "checkpoints" / "step-0000004")
    b = weights(root / "resumed" / "checkpoints" / "step-0000004")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert [r["step"] for r in read_jsonl(root / "resumed" / "affinity.jsonl")] == [0, 0, 2, 2]


def test_predictions_are_read_by_the_scorer(root: Path, full_run: Path) -> None:
    from crab_eval.model.predict import predict
    from crab_eval.registry import get_task

    out = root / "preds_toy.jsonl"
    assert (
        predict(
            full_run,
            "toy",
            root / "toy",
            "test",
            out,
            batch_size=2,
            max_new_tokens=6,
            features=fake_features,
            progress=False,
        )
        == 5
    )
    rows = read_jsonl(out)
    assert [set(r) for r in rows] == [{"id", "text"}] * 5
    task = get_task("toy")
    samples = task.load(root / "toy", "test")
    pset = read_predictions(out, task, samples)
    assert pset.n_missing == 0 and pset.n_text == 5

    out = root / "preds_mask.jsonl"
    ckpt = full_run / "checkpoints" / "step-0000004"
    predict(
        ckpt,
        "toy_mask",
        root / "mask",
        "test",
        out,
        batch_size=2,
        max_new_tokens=10,
        features=fake_features,
        progress=False,
    )
    rows = read_jsonl(out)
    assert len(rows) == 3
    for r in rows:  # an answer with its mask tokens gives masks; one without them stays text (counted unparsed)
        if "prediction" in r:
            masks = r["prediction"]["masks"]
            assert len(masks) == 2 and all(m["size"] == [24, 24] and isinstance(m["counts"], str) for m in masks)
        else:
            assert set(r) == {"id", "text"}
    task = get_task("toy_mask")
    pset = read_predictions(out, task, task.load(root / "mask", "test"))
    assert pset.n_missing == 0 and pset.n_unparsed == sum("text" in r for r in rows)


def test_mask_head_writes_ground_truth_sized_rles(root: Path, full_run: Path) -> None:
    """Force the mask-token answer: masks come out at the ground truth's size, decodable by pycocotools."""
    from pycocotools import mask as mask_utils

    from crab_eval.model.checkpoint import load_for_inference
    from crab_eval.model.data import Collator, ExampleBuilder, TaskData
    from crab_eval.registry import get_task

    model, tok, _ = load_for_inference(full_run)
    task = get_task("toy_mask")
    samples = task.load(root / "mask", "test")
    builder = ExampleBuilder([TaskData(task, samples)], fake_features, 64)
    examples = [builder.build(0, task, root / "mask", samples[i], False) for i in range(2)]
    collator = Collator(tok, model.n_media_tokens(10), model.n_media_tokens(10), 512)
    batch = collator.prompt_batch(examples)
    answer = tok(task.target_text(samples[0]), add_special_tokens=False, return_tensors="pt")["input_ids"]
    gen = model.generate(batch, 1, tok)
    gen["ids"] = torch.cat([answer, answer])
    logits, present = model.masks_after_generation(batch, gen, tok.eos_token_id, [[0, 5], [0, 5]])
    assert present.tolist() == [True, True]
    from crab_eval.model.mask_head import masks_to_rles

    rles = masks_to_rles(logits[0], [(24, 24), (30, 20)])
    assert [list(mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}).shape) for r in rles] == [
        [24, 24],
        [30, 20],
    ]


def test_cli_train_and_predict(root: Path, tmp_path: Path) -> None:
    from crab_eval.commands import predict as predict_cmd
    from crab_eval.commands import train as train_cmd

    cfg = make_config(root, "unused")
    cfg["run_dir"] = str(tmp_path / "cli_run")
    cfg["tasks"] = cfg["tasks"][:1]
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))  # JSON is YAML

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    train_cmd.add_parser(sub)
    predict_cmd.add_parser(sub)
    args = parser.parse_args(
        [
            "train",
            "--config",
            str(tmp_path / "c.yaml"),
            "train.steps=1",
            "adapter.kind=lora",
            "train.affinity_every=0",
            "train.features=crab_eval.model.testing:fake_features",
            "--no-progress",
        ]
    )
    assert args.run(args) == 0
    assert load_config(tmp_path / "cli_run" / "config.yaml").adapter.kind == "lora"
    out = tmp_path / "p.jsonl"
    args = parser.parse_args(
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "cli_run"),
            "--task",
            "toy",
            "--data",
            str(root / "toy"),
            "--split",
            "test",
            "--out",
            str(out),
            "--max-new-tokens",
            "3",
            "--no-progress",
        ]
    )
    assert args.run(args) == 0  # the run's features callable is used again
    assert len(read_jsonl(out)) == 5


def test_config_errors_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("run_dir: r\ntasks: [{task: toy, data: d}]\ntrain: {steps: 5}\n")
    cfg = load_config(path, ["train.lr=3e-4", "adapter.kind=moelora", "adapter.heads=4", "model.queries=2"])
    assert cfg.train.lr == 3e-4 and cfg.adapter.kind == "moelora" and cfg.model.queries == 2 and cfg.variant == "single"
    cfg = load_config(path, ["tasks.0.data=elsewhere", "tasks.0.weight=2"])
    assert cfg.tasks[0].data == "elsewhere" and cfg.tasks[0].weight == 2.0
    with pytest.raises(CrabEvalError, match="unknown key"):
        load_config(path, ["train.lrr=1"])
    with pytest.raises(CrabEvalError, match="divisible"):
        load_config(path, ["adapter.kind=moelora", "adapter.heads=3"])
    with pytest.raises(CrabEvalError, match=r"adapter\.kind"):
        load_config(path, ["adapter.kind=qlora"])
    with pytest.raises(CrabEvalError, match="KEY=VALUE"):
        load_config(path, ["steps"])
    # An encoder's own boolean `train` is not the run's `train` section.
    cfg = load_config(path, ["model.visual_encoder.train=false", "model.audio_encoder.train=true"])
    assert cfg.model.visual_encoder.train is False and cfg.model.audio_encoder.train is True and cfg.train.steps == 5


def test_frozen_encoders_are_not_trained(tmp_path: Path) -> None:
    from crab_eval.model.encoders import build_encoder

    path = _write(tmp_path, "run_dir: r\ntasks: [{task: toy, data: d}]\n")
    cfg = load_config(path, ["model.visual_encoder.train=false"])
    frozen = build_encoder(cfg.model.visual_encoder, "visual")
    trained = build_encoder(cfg.model.audio_encoder, "audio")
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in trained.parameters())


def _write(folder: Path, text: str) -> Path:
    path = folder / "c.yaml"
    path.write_text(text)
    return path


def test_training_lowers_the_loss(root: Path) -> None:
    cfg = make_config(root, "learn", steps=24, lr=3e-3, affinity_every=0, checkpoint_every=100, router_log_every=0)
    cfg["tasks"] = cfg["tasks"][:1]
    cfg["model"] = {"train_embeddings": True}
    run = train(config_from_dict(cfg), features=fake_features, progress=False)
    losses = [r["loss"] for r in read_jsonl(run / "train_log.jsonl")]
    assert sum(losses[-4:]) / 4 < 0.6 * sum(losses[:4]) / 4


def test_resume_refuses_a_foreign_checkpoint(root: Path, full_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "other"
    shutil.copytree(full_run, run)
    cfg = make_config(root, "x")
    cfg["run_dir"] = str(run)
    cfg["adapter"] = {"kind": "lora"}  # the checkpoint holds I-LoRA weights
    with pytest.raises(CrabEvalError, match="does not fit"):
        train(config_from_dict(cfg), features=fake_features, progress=False)


@pytest.mark.parametrize("mask_image_dim", [0, 16])
def test_real_avsbench_adapter_trains_and_predicts_frame_by_frame(tmp_path: Path, mask_image_dim: int) -> None:
    """MS3 through its own adapter: one example per annotated frame (Crab's per-frame instruction), and predictions
    with one RLE per annotated frame at the ground truth's size, read back by the prediction reader; with the mask
    decoder reading the LLM-side visual map (0) or its own image encoder (16)."""
    import numpy as np

    from crab_eval.layouts import avsbench as layout
    from crab_eval.model.predict import predict
    from crab_eval.registry import get_task

    rng = np.random.default_rng(0)
    videos = [
        layout.Video(f"{split}{i}", split, layout.random_blob_masks(rng, 5, size=(40, 48)))
        for split, n in (("train", 3), ("test", 2))
        for i in range(n)
    ]
    layout.write_ms3(tmp_path / "ms3", videos)
    task = get_task("ms3")
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "tasks": [{"task": "ms3", "data": str(tmp_path / "ms3")}],
        "adapter": {"kind": "moelora", "heads": 2},
        "model": {"mask_image_dim": mask_image_dim},
        "train": {"steps": 2, "batch_size": 2},
    }
    run = train(config_from_dict(cfg), features=fake_features, progress=False)
    from safetensors.torch import load_file

    saved = load_file(next((run / "checkpoints").glob("step-*")) / "trainable.safetensors")
    assert any(k.startswith("mask_image_encoder.") for k in saved) == bool(mask_image_dim)
    out = tmp_path / "p.jsonl"
    predict(
        tmp_path / "run",
        "ms3",
        tmp_path / "ms3",
        "test",
        out,
        batch_size=4,
        max_new_tokens=4,
        features=fake_features,
        progress=False,
    )
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["test0", "test1"]
    pset = read_predictions(out, task, task.load(tmp_path / "ms3", "test"))
    assert pset.n_missing == 0 and pset.n_unparsed == sum("text" in r for r in rows)
    assert all(len(r["prediction"]["masks"]) == 5 for r in rows if "prediction" in r)
