"""Crab's recipe with real checkpoint formats: configs/crab_llama2_ilora.yaml, pointed at tiny random checkpoints of
exactly its architectures (a Llama causal LM + Llama tokenizer, a 24-layer CLIP read at hidden states 14, 22, 23, an
AST audio encoder over the whole clip), trains unified and single-task, resumes, predicts, scores and feeds the
transfer table. Nothing is downloaded: the checkpoints are written to a temporary folder by
crab_eval.model.tiny_checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crab_eval.model import checkpoint as ck
from crab_eval.model import tiny_checkpoints as tiny
from crab_eval.model.config import EncoderConfig, load_config
from crab_eval.model.testing import MELS, TIME
from crab_eval.model.train import train

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
CONFIG = Path(__file__).parent.parent / "configs" / "crab_llama2_ilora.yaml"
STEPS = 4


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crab_eval.layouts import avsbench as layout
    from crab_eval.layouts.ave import OFFICIAL_CATEGORIES as CAT
    from crab_eval.layouts.ave import write_dataset

    root = tmp_path_factory.mktemp("crab")
    rows = [(CAT[i % 4], f"vid{i}", i % 4, 6 + i % 4) for i in range(12)]
    write_dataset(root / "ave", {"train": rows[:8], "test": rows[8:]})
    rng = np.random.default_rng(0)
    videos = [
        layout.Video(f"{split}{i}", split, layout.random_blob_masks(rng, 5, size=(40, 48)))
        for split, n in (("train", 3), ("test", 2))
        for i in range(n)
    ]
    layout.write_ms3(root / "ms3", videos)
    tiny.llama_checkpoint(root / "llama")
    tiny.clip_checkpoint(root / "clip", image_size=32)
    tiny.ast_checkpoint(root / "ast", mels=MELS, max_length=10 * TIME)  # the fake clip: 10 segments of TIME frames
    return root


def crab_config(root: Path, run: str, tasks: list[str], *extra: str):
    """The committed Crab config with the tiny checkpoints, the test data and a CPU-sized run."""
    listed = ", ".join(f"{{task: {t}, data: {root / t}}}" for t in tasks)
    overrides = [
        f"run_dir={root / run}",
        f"tasks=[{listed}]",
        f"model.backbone={root / 'llama'}",
        f"model.visual_encoder.path={root / 'clip'}",
        "model.visual_encoder.image_size=32",
        f"model.audio_encoder.path={root / 'ast'}",
        "model.queries=2",
        "model.projector_dim=16",
        "model.projector_layers=1",
        "model.mask_dim=16",
        "model.mask_train_size=32",
        f"train.steps={STEPS}",
        "train.batch_size=4",
        "train.grad_accum=2",
        "train.lr=2e-3",
        "train.checkpoint_every=2",
        "train.router_log_every=2",
        "train.affinity_every=2",
        "train.features=crab_eval.model.testing:fake_features",
        *extra,
    ]
    return load_config(CONFIG, overrides)


@pytest.fixture(scope="module")
def unified(root: Path) -> Path:
    return train(crab_config(root, "unified", ["ave", "ms3"]), progress=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_committed_config_keeps_crabs_choices(root: Path) -> None:
    cfg = load_config(CONFIG)  # as committed, for GPUs
    m, a, t = cfg.model, cfg.adapter, cfg.train
    assert m.visual_encoder.hidden_layers == [14, 22, 23] and m.queries == 32 and m.dtype == "float32"
    assert m.audio_encoder.type == "hf" and m.audio_encoder.window == "clip"
    assert (a.kind, a.r, a.alpha, a.dropout, a.heads) == ("ilora", 8, 16.0, 0.05, 3)
    assert t.batch_size == 256 and t.batch_size // t.grad_accum == 8 * 4  # 8 GPUs x 4 per GPU x 8 accumulation
    assert (t.lr, t.schedule, t.warmup_ratio, t.gradient_checkpointing) == (1e-4, "cosine", 0.03, True)


def test_llama_tokens_added_embeddings_resized_trained_and_reloaded(root: Path, unified: Path) -> None:
    from transformers import AutoModelForCausalLM

    from crab_eval.model.tokenizer import load_tokenizer, special_tokens

    base = load_tokenizer(root / "llama")
    tok = load_tokenizer(unified / "tokenizer")
    assert type(tok).__name__ == "LlamaTokenizer" and tok.pad_token == "</s>"  # Llama-2 has none: EOS pads
    added = [t for t in special_tokens(6) if t not in base.get_vocab()]
    assert len(added) == 14 and all(tok.convert_tokens_to_ids(t) >= len(base) for t in added)
    assert tok("<video>", add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids("<video>")]
    saved = weights(unified / "checkpoints" / f"step-{STEPS:07d}")
    emb = saved["backbone.model.embed_tokens.weight"]
    assert emb.shape[0] == len(tok) > len(base)
    original = AutoModelForCausalLM.from_pretrained(root / "llama").get_input_embeddings().weight
    assert not torch.allclose(emb[: len(base)], original)  # trained (the resize keeps the old rows, then AdamW)
    model, tok2, _ = ck.load_for_inference(unified)
    assert len(tok2) == len(tok)
    torch.testing.assert_close(model.backbone.get_input_embeddings().weight, emb)  # reloaded as saved


def test_clip_layers_and_ast_clip_window_feed_the_projectors(root: Path, unified: Path) -> None:
    model, _, cfg = ck.load_for_inference(unified)
    assert cfg.model.visual_encoder.hidden_layers == [14, 22, 23]
    assert model.visual_encoder.out_dim == 3 * 16  # three hidden states of the 16-wide tiny CLIP, concatenated
    assert not any(p.requires_grad for p in model.visual_encoder.parameters())
    assert not model.visual_encoder.model.training and not model.audio_encoder.model.training  # frozen: eval
    with torch.no_grad():
        media = model.encode_media(torch.randn(1, 10, MELS, TIME), torch.rand(1, 10, 3, 32, 32))
    assert media["video_tokens"].shape == (1, 10 * 2, model.backbone.config.hidden_size)
    assert media["audio_tokens"].shape == media["video_tokens"].shape


def test_run_logs_affinity_and_resume(root: Path, unified: Path) -> None:
    log = read_jsonl(unified / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in log)
    assert [(r["step"], r["kind"]) for r in read_jsonl(unified / "affinity.jsonl")] == [
        (0, "grad_cosine"),
        (0, "lookahead"),
        (2, "grad_cosine"),
        (2, "lookahead"),
    ]
    router = read_jsonl(unified / "router_weights.jsonl")
    assert [r["step"] for r in router] == [2, 4] and router[0]["tasks"] == ["ave", "ms3"]
    half = crab_config(root, "resumed", ["ave", "ms3"], "train.stop_after=2")
    train(half, progress=False)
    train(crab_config(root, "resumed", ["ave", "ms3"]), progress=False)
    a = weights(unified / "checkpoints" / f"step-{STEPS:07d}")
    b = weights(root / "resumed" / "checkpoints" / f"step-{STEPS:07d}")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


def test_predict_score_and_transfer(root: Path, unified: Path) -> None:
    from crab_eval.model.predict import predict
    from crab_eval.scoring import score
    from crab_eval.transfer import compute_transfer

    single = train(crab_config(root, "single", ["ave"], "train.affinity_every=0"), progress=False)
    results = {}
    for name, run in (("single", single), ("unified", unified)):
        out = root / f"{name}_ave.jsonl"
        assert predict(run, "ave", root / "ave", "test", out, batch_size=2, max_new_tokens=6, progress=False) == 4
        results[name] = score("ave", root / "ave", "test", out)
        assert results[name].n_samples == 4 and results[name].n_missing == 0
    report = compute_transfer([results["single"]], [results["unified"]], n_boot=50)
    (row,) = report.tasks
    main = results["single"].main_metric
    assert row.task == "ave" and row.abs_change == pytest.approx(
        results["unified"].metrics[main] - results["single"].metrics[main]
    )
    out = root / "unified_ms3.jsonl"
    predict(unified, "ms3", root / "ms3", "test", out, batch_size=2, max_new_tokens=10, progress=False)
    result = score("ms3", root / "ms3", "test", out)
    rows = read_jsonl(out)
    assert result.n_missing == 0 and result.n_unparsed == sum("text" in r for r in rows)  # none dropped


def test_ast_clip_window_gives_each_segment_its_second(tmp_path: Path) -> None:
    """Segment s's tokens are AST's patch columns over its second, averaged to k columns per frequency row: checked
    against a loop over the columns written from the definition (adaptive pooling's bins)."""
    from transformers import AutoFeatureExtractor, AutoModel

    from crab_eval.model.encoders import build_encoder

    tiny.ast_checkpoint(tmp_path / "ast", mels=16, max_length=256)
    enc = build_encoder(EncoderConfig(type="hf", path=str(tmp_path / "ast"), window="clip"), "audio")
    audio = torch.randn(2, 10, 16, 24)  # 240 real frames of 256: padded
    out = enc(audio)
    rows, cols = (16 - 4) // 4 + 1, (240 - 4) // 4 + 1  # 4 frequency rows; 60 time columns inside the clip
    k = cols // 10
    assert out["tokens"].shape == (2, 10, rows * k, 16)
    fe = AutoFeatureExtractor.from_pretrained(tmp_path / "ast")
    pad = (0.0 - fe.mean) / (2 * fe.std)  # ASTFeatureExtractor pads a zero fbank, then normalises
    clip = torch.full((2, 256, 16), pad)
    clip[:, :240] = audio.permute(0, 1, 3, 2).reshape(2, 240, 16)
    with torch.no_grad():
        ast = AutoModel.from_pretrained(tmp_path / "ast")
        hidden = ast(input_values=clip, output_hidden_states=True).hidden_states[-1][:, 2:]  # hidden_layers [-1]
    grid = hidden.reshape(2, rows, -1, 16)[:, :, :cols]  # [B, freq, time, D]
    for s in (0, 4, 9):
        for j in range(k):
            i = s * k + j  # output column i averages input columns floor(i L / n) .. ceil((i + 1) L / n) - 1
            lo, hi = (i * cols) // (10 * k), -((-(i + 1) * cols) // (10 * k))
            expected = grid[:, :, lo:hi].mean(2)  # [B, freq, D]
            got = out["tokens"][:, s].reshape(2, rows, k, 16)[:, :, j]
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / ck.WEIGHTS))


@pytest.mark.parametrize("kind", ["crab", "omni"])
def test_checkpoint_features_slice_the_extractors_output(tmp_path: Path, kind: str) -> None:
    """A 10-s clip: each segment gets 100 frames of 128 bins, the extractor's output for the whole clip cut in ten
    (AST's fbank, or Whisper's log-mel as Qwen2.5-Omni's processor pads it to 30 s); frames at 224 px."""
    import soundfile as sf
    from PIL import Image
    from transformers import ASTFeatureExtractor, WhisperFeatureExtractor

    from crab_eval.model.recipes import crab_features, omni_features
    from crab_eval.tasks.base import Sample

    wave = np.random.default_rng(0).normal(0, 0.1, 160_000).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 16_000, subtype="FLOAT")
    for i in range(5):
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    sample = Sample("s", "q", None, "s", media={"audio": "a.wav", "frames": [f"{i}.png" for i in range(5)]})
    if kind == "crab":
        out = crab_features(None, tmp_path, sample)
        whole = ASTFeatureExtractor(max_length=1000)(wave, sampling_rate=16_000)["input_values"][0].T  # [128, 1000]
    else:
        out = omni_features(None, tmp_path, sample)
        whole = WhisperFeatureExtractor(feature_size=128)(wave, sampling_rate=16_000)["input_features"][0][:, :1000]
    assert out["audio"].shape == (10, 128, 100) and out["frames"].shape == (10, 3, 224, 224)
    for s in (0, 3, 9):
        np.testing.assert_allclose(out["audio"][s].numpy(), np.asarray(whole)[:, 100 * s : 100 * (s + 1)], atol=1e-5)
    assert float(out["frames"][2].mean()) == pytest.approx(40 / 255, abs=1e-3)  # segment 2 shows image 1 of 5
