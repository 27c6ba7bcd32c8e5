"""The Python API: `import crab_eval` loads nothing heavy, `crab_eval.score` takes a file, dicts or a DataFrame and
gives the command line's numbers, `crab_eval.evaluate` without a folder, results as frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import crab_eval
from crab_eval.cli import main
from crab_eval.errors import PredictionFileError
from crab_eval.registry import get_task
from crab_eval.scoring import load_split

pandas = pytest.importorskip("pandas")


def test_import_is_light_and_every_name_of_all_resolves() -> None:
    code = (
        "import sys, crab_eval; heavy = ('numpy', 'pandas', 'torch', 'transformers', 'crab_eval.api'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    assert set(crab_eval.__all__) == {"__version__", *crab_eval._API}
    for name in crab_eval.__all__:
        assert getattr(crab_eval, name) is not None
    assert {"score", "evaluate", "load_results", "RunResult"} <= set(crab_eval.__all__) <= set(dir(crab_eval))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        crab_eval.nope  # noqa: B018


def test_score_takes_a_file_dicts_or_a_frame(synth_root: Path, tmp_path: Path) -> None:
    task = get_task("music_avqa")
    split = load_split(task, synth_root / "music_avqa", "test")
    rows = [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in split]
    rows[0] = {"id": split[0].id, "text": "<answer> zebra </answer>"}  # wrong, as text
    rows[1] = {"id": split[1].id, "text": "no tag"}  # unparsed
    del rows[2]  # missing
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", "--task", "music_avqa", "--data", str(synth_root / "music_avqa"), "--predictions",
                 str(path), "--output", str(tmp_path / "cli.json")]) == 0  # fmt: skip
    cli = crab_eval.read_result(tmp_path / "cli.json")
    frame = pandas.DataFrame(rows)  # 'text' and 'prediction' columns, NaN where a row has the other one
    for given in (path, rows, iter(rows), frame):
        result = crab_eval.score("music_avqa", synth_root / "music_avqa", given, run={"model": "m"})
        assert result.metrics == cli.metrics
        assert (result.n_missing, result.n_unparsed, result.n_samples) == (1, 1, 16)
        assert result.run == {"model": "m"}
    assert result.provenance["predictions_file"] == "<in memory>"
    with pytest.raises(PredictionFileError, match="duplicate id"):
        crab_eval.score("music_avqa", synth_root / "music_avqa", [rows[3], rows[3]])


def test_frames_of_a_result_and_of_many(synth_root: Path, tmp_path: Path) -> None:
    evaluation = crab_eval.evaluate("majority", "ave,music_avqa", synth_root, progress=False)
    assert set(evaluation.results) == {("ave", "test"), ("music_avqa", "test")}
    assert not evaluation.out.exists()  # no folder given: a temporary one, removed
    ave = evaluation.results[("ave", "test")]
    frame = ave.to_frame()
    assert list(frame.columns[:7]) == ["task", "split", "model", "variant", "seed", "metric", "value"]
    assert frame.set_index("metric")["value"].to_dict() == ave.metrics
    assert frame.loc[frame["main"], "metric"].tolist() == ["accuracy"]
    samples = ave.samples_frame()
    assert len(samples) == ave.n_samples and {"id", "group", "status", "prompt_hash"} <= set(samples.columns)
    assert len(evaluation.to_frame()) == len(frame) + len(evaluation.results[("music_avqa", "test")].metrics)

    crab_eval.evaluate("prior", "ave", synth_root, tmp_path / "prior", progress=False)
    crab_eval.evaluate("majority", "ave", synth_root, tmp_path / "majority", progress=False)
    both = crab_eval.load_results([tmp_path])  # summaries, run settings and entries are not results
    assert sorted(set(both["model"])) == ["baseline-majority", "baseline-prior"]
    assert set(both["file"].map(lambda f: Path(f).name)) == {"ave.test.json"}
    accuracy = both[both["metric"] == "accuracy"].set_index("model")["value"]
    assert accuracy["baseline-majority"] == ave.metrics["accuracy"]
    one = crab_eval.load_results(tmp_path / "prior" / "results" / "ave.test.json")
    assert len(one) == len(ave.metrics) and set(one["variant"]) == {"baseline"}
