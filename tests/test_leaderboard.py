"""The leaderboard: rows from entries and published numbers, win rates and transfer by hand, escaping, outputs."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_baselines_adapters import write_ave, write_music_avqa

from crab_eval.baselines.predictors import write_baseline
from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.leaderboard.board import columns, coverage, load_entries, transfer, win_rates
from crab_eval.leaderboard.render import build_site, collect_rows
from crab_eval.leaderboard.submission import score_submission

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

META: dict[str, Any] = {
    "schema_version": 1,
    "model": "Toy-LLM",
    "team": "Team T",
    "paper": "Toy paper, 2025",
    "parameters": 7_000_000,
    "llm_backbone": "tiny",
    "encoders": {"audio": "mel"},
    "training_data": ["toy"],
    "variant": "unified",
    "date": "2025-06-01",
}
ROWS = [("a", "v1", "dog"), ("b", "v1", "cat"), ("c", "v2", "dog"), ("d", "v3", "cow")]


def published_file(path: Path) -> Path:
    row = {"split": "test", "variant": "unknown", "source": "s", "scale": "0-100"}
    rows = [
        {**row, "model": "A", "task": "toy", "metric": "accuracy", "value": 80.0},
        {**row, "model": "A", "task": "ref_avs", "split": "test_n", "metric": "S", "value": 0.10, "scale": "0-1"},
        {**row, "model": "B", "task": "toy", "metric": "accuracy", "value": 60.0, "variant": "single-task"},
        {
            **row,
            "model": "B",
            "task": "ref_avs",
            "split": "test_n",
            "metric": "S",
            "value": 0.05,
            "scale": "0-1",
            "note": "read as S",
        },
        {**row, "model": "C", "task": "toy", "metric": "accuracy", "value": 80.0, "variant": "unified"},
    ]
    data = {
        "status": "reported, not rescored",
        "sources": {"s": {"document": "d", "paper": "p", "table": "t"}},
        "rows": rows,
    }
    path.write_text(json.dumps(data))
    return path


def test_win_rate_and_coverage_by_hand(tmp_path: Path) -> None:
    rows = collect_rows(None, published_file(tmp_path / "pub.json"))
    cols = columns(rows)
    assert cols == [("ref_avs", "test_n"), ("toy", "test")]
    rates = win_rates(rows, cols)
    by_model = {r.model: r for r in rows}
    # toy accuracy: A 80 beats B, ties C -> 1.5/2; B beats nobody -> 0; C beats B, ties A -> 0.75.
    # ref_avs S (lower is better, 0-1 scale): A 0.10 loses to B 0.05 -> 0; B -> 1.
    assert rates[by_model["A"].id] == pytest.approx(100 * (0.75 + 0) / 2)
    assert rates[by_model["B"].id] == pytest.approx(100 * (0 + 1) / 2)
    assert rates[by_model["C"].id] == pytest.approx(75.0)
    assert [coverage(by_model[m], cols) for m in "ABC"] == [2, 2, 1]
    s_value = by_model["A"].values[("ref_avs", "test_n", "S")]
    assert (s_value.value, s_value.reported, s_value.scale) == (pytest.approx(10.0), 0.10, "0-1")


def _toy_submission(tmp_path: Path, meta: dict[str, Any], name: str = "sub.zip") -> Path:
    unified = "".join(json.dumps({"id": i, "prediction": {"label": "dog"}}) + "\n" for i in "abcd")
    single = "".join(json.dumps({"id": i, "prediction": {"label": y}}) + "\n" for i, _, y in ROWS[:3])
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.json", json.dumps(meta))
        archive.writestr("toy.jsonl", unified)
        archive.writestr("single_task/toy.jsonl", single)
    return path


@pytest.fixture()
def toy_root(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy_test.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in ROWS))
    return folder.parent


def test_entry_rows_transfer_and_outputs(tmp_path: Path, toy_root: Path) -> None:
    entries = tmp_path / "entries"
    score_submission(_toy_submission(tmp_path, META), toy_root, entries / "toy.json")
    (entries / "notes.json").write_text('{"something": "else"}')  # not an entry: skipped
    assert len(load_entries(entries)) == 1
    rows = collect_rows(entries, published=False)
    assert [(r.model, r.variant, r.source) for r in rows] == [
        ("Toy-LLM", "unified", "rescored"),
        ("Toy-LLM (single-task runs)", "single-task", "rescored"),
    ]
    cols = columns(rows)
    # unified: dog right for a, c -> 50; single-task: a, b, c right, d missing -> 75; delta -25.
    [(row, deltas)] = transfer(rows, cols)
    assert row.model == "Toy-LLM" and deltas == {("toy", "test"): pytest.approx(-25.0)}
    written = build_site(entries, tmp_path / "site", published=False, generated="2025-06-02")
    page = written["html"].read_text()
    assert 'data-row="' in page and "Toy-LLM (single-task runs)" in page
    assert "https://" not in page.replace("http://www.w3.org", "")  # nothing remote
    md = written["markdown"].read_text()
    assert "| Toy-LLM | rescored | unified | 1/1 | 0.0 |" in md  # 50 loses to its single-task runs (75)
    with written["transfer"].open() as handle:
        table = list(csv.reader(handle))
    assert table[0][-2:] == ["Positive transfer", "Mean Δ"]
    assert table[1][1:] == ["Toy-LLM", "rescored", "unified", "-25.00", "0/1", "-25.00"]
    with written["summary"].open() as handle:
        assert [r[1] for r in csv.reader(handle)][1:] == ["Toy-LLM", "Toy-LLM (single-task runs)"]
    # Provenance: the submission's hash, the data fingerprint and the result file.
    assert "sha256:" in page and "toy.results/unified.toy.test.json" in page


def test_untrusted_strings_are_escaped(tmp_path: Path, toy_root: Path) -> None:
    evil = {
        **META,
        "model": "<script>alert(1)</script>",
        "team": "<img src=x onerror=alert(2)>",
        "notes": "a | b\n<b>bold</b>",
    }
    score_submission(_toy_submission(tmp_path, evil), toy_root, tmp_path / "entries" / "e.json")
    written = build_site(tmp_path / "entries", tmp_path / "site", published=False)
    page = written["html"].read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("<script>") == 1  # the page's own
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = written["markdown"].read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_cli_build_with_bundled_published_numbers(tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert main(["leaderboard", "build", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "Crab" in page and "reported" in page
    assert (out / "family-temporal-localization.csv").is_file()
    md = (out / "leaderboard.md").read_text()
    assert "| Crab | reported (Crab paper) | unified |" in md and "80.15" in md
    assert main(["leaderboard", "build", "--entries", str(tmp_path / "none"), "--out", str(out)]) == 2


def test_malformed_entry_and_published_files(tmp_path: Path) -> None:
    entries = tmp_path / "entries"
    entries.mkdir()
    (entries / "bad.json").write_text("{oops")
    with pytest.raises(CrabEvalError, match="malformed JSON"):
        load_entries(entries)
    (entries / "bad.json").write_text(json.dumps({"kind": "crab-eval-leaderboard-entry"}))
    with pytest.raises(CrabEvalError, match="without 'submission'"):
        load_entries(entries)
    (tmp_path / "pub.json").write_text("[]")
    with pytest.raises(CrabEvalError, match="not a published-numbers file"):
        collect_rows(None, tmp_path / "pub.json")


def test_baseline_submission_on_real_adapters_appears_on_the_page(tmp_path: Path) -> None:
    """The issue's 'done when': baseline prediction files validate, score and appear on the page."""
    root = tmp_path / "data"
    write_ave(root / "ave")
    write_music_avqa(root / "music_avqa")
    sub = tmp_path / "blind"
    sub.mkdir()
    write_baseline("ave", root / "ave", "majority", sub / "ave.jsonl")
    write_baseline("music_avqa", root / "music_avqa", "blind", sub / "music_avqa.jsonl")
    (sub / "submission.json").write_text(json.dumps({**META, "model": "Blind baseline", "variant": "single-task"}))
    assert main(["submit", "validate", str(sub), "--data-root", str(root)]) == 0
    assert (
        main(["submit", "score", str(sub), "--data-root", str(root), "--out", str(tmp_path / "entries" / "blind.json")])
        == 0
    )
    assert main(["leaderboard", "build", "--entries", str(tmp_path / "entries"), "--out", str(tmp_path / "site")]) == 0
    md = (tmp_path / "site" / "leaderboard.md").read_text()
    # AVE 50.00 and MUSIC-AVQA overall 50.00, worked by hand in test_baselines_adapters.py.
    temporal = md.split("## Temporal localization")[1].split("##")[0]
    assert "| Blind baseline | rescored | single-task | 50.00 |" in temporal
    reasoning = md.split("## Spatio-temporal reasoning (QA)")[1].split("##")[0]
    assert "| Model | Source | Variant | music_avqa overall ↑ | avqa accuracy ↑ | Coverage |" in reasoning
    assert "| Blind baseline | rescored | single-task | 50.00 | – | 1/2 |" in reasoning


def test_win_rates_compare_rows_within_their_source(tmp_path: Path, toy_root: Path) -> None:
    score_submission(_toy_submission(tmp_path, META), toy_root, tmp_path / "entries" / "e.json")
    rows = collect_rows(tmp_path / "entries", published_file(tmp_path / "pub.json"))
    rates = {r.model: v for r, v in zip(rows, win_rates(rows, columns(rows)).values(), strict=True)}
    # Rescored: unified 50 loses to its single-task runs 75 on toy; the reported A, B, C never enter the pool.
    assert rates["Toy-LLM"] == 0.0 and rates["Toy-LLM (single-task runs)"] == 100.0
    assert rates["C"] == pytest.approx(75.0)
