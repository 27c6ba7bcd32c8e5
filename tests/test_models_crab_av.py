"""The `crab-av` model: this project's checkpoints under `crab-eval evaluate`, answering as `crab-eval predict` does,
with run metadata read from the run (so that `transfer` pairs a single-task run with a unified one), and end to end on
real media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crab_eval.cli import main
from crab_eval.evaluation import evaluate
from crab_eval.results import read_result

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("model_toy_tasks", "one_torch_thread")]
torch = pytest.importorskip("torch")
FAKE = "crab_eval.model.testing:fake_features"


def config(root: Path, run: str, tasks: list[str], features: str | None = FAKE, data: Path | None = None) -> dict:
    split = {"toy": "val", "toy_mask": "train", "ave": "train", "s4": "train"}
    return {
        "run_dir": str(root / run),
        "seed": 3,
        "tasks": [{"task": t, "data": str((data or root) / t), "split": split[t]} for t in tasks],
        "adapter": {"kind": "ilora", "dropout": 0.0},
        "train": {"steps": 2, "batch_size": 4, "checkpoint_every": 2, "features": features},
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crab_eval.model.config import config_from_dict
    from crab_eval.model.testing import write_toy, write_toy_mask
    from crab_eval.model.train import train

    root = tmp_path_factory.mktemp("crab_av")
    write_toy(root / "toy", "val", 8)
    write_toy(root / "toy", "test", 5, seed=1)
    write_toy_mask(root / "toy_mask", "train", 4)
    write_toy_mask(root / "toy_mask", "test", 3, seed=1)
    train(config_from_dict(config(root, "single", ["toy"])), progress=False)
    train(config_from_dict(config(root, "unified", ["toy", "toy_mask"])), progress=False)
    return root


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_crab_av_answers_as_predict_does_and_records_the_run(runs: Path) -> None:
    from crab_eval.model.predict import predict

    out = runs / "eval_unified"
    evaluation = evaluate("crab-av", "toy,toy_mask", runs, out, model_args={"checkpoint": str(runs / "unified")},
                          generation="max_new_tokens=8", batch_size=2, progress=False)  # fmt: skip
    for task in ("toy", "toy_mask"):
        expected = runs / f"{task}.predict.jsonl"
        predict(runs / "unified", task, runs / task, "test", expected, batch_size=2, max_new_tokens=8, progress=False)
        assert read_jsonl(out / "predictions" / f"{task}.jsonl") == read_jsonl(expected)
        result = evaluation.results[(task, "test")]
        assert result.run == {"model": "unified", "variant": "unified", "adapter": "ilora", "seed": 3}
        assert result.n_missing == 0
    masks = read_jsonl(out / "predictions" / "toy_mask.jsonl")
    assert all(("prediction" in r) != ("text" in r) for r in masks)  # masks, or the raw answer (unparsed)
    info = evaluation.results[("toy", "test")].provenance["inference"]["model_info"]
    assert info["checkpoint"] == "step-0000002" and info["trained_tasks"] == ["toy", "toy_mask"]


def test_single_and_unified_runs_pair_in_transfer(runs: Path) -> None:
    results = {}
    for run in ("single", "unified"):
        out = runs / f"pair_{run}"
        args = ["evaluate", "--model", "crab-av", "--model-args", f"checkpoint={runs / run}", "--tasks", "toy",
                "--data-root", str(runs), "--out", str(out), "--gen-kwargs", "max_new_tokens=6",
                "--no-progress"]  # fmt: skip
        assert main(args) == 0
        results[run] = out / "results" / "toy.test.json"
    assert read_result(results["single"]).run["variant"] == "single"
    assert main(["transfer", "--single", str(results["single"]), "--unified", str(results["unified"]),
                 "--bootstrap", "50"]) == 0  # fmt: skip


def test_crab_av_end_to_end_on_real_media(synth_root: Path, tmp_path: Path) -> None:
    """Trained and evaluated on decoded SynthAV media (crab_eval.media), a text task and a mask task."""
    from crab_eval.model.config import config_from_dict
    from crab_eval.model.train import train

    train(config_from_dict(config(tmp_path, "run", ["ave", "s4"], None, synth_root)), progress=False)
    args = {"checkpoint": str(tmp_path / "run")}
    evaluation = evaluate("crab-av", "ave,s4", synth_root, tmp_path / "out", model_args=args,
                          generation="max_new_tokens=8", batch_size=2, progress=False)  # fmt: skip
    for task in ("ave", "s4"):
        result = evaluation.results[(task, "test")]
        assert result.n_samples == 4 and result.n_missing == 0
        assert len(read_jsonl(tmp_path / "out" / "predictions" / f"{task}.jsonl")) == 4
