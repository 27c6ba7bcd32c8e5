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
from crab_eval.leaderboard.board import (
    benchmarks,
    column_win_rates,
    columns,
    coverage,
    default_split,
    family_of,
    load_entries,
    ranked_rows,
    slug,
    transfer,
    win_rates,
)
from crab_eval.leaderboard.render import build_site, collect_rows
from crab_eval.leaderboard.submission import score_submission
from crab_eval.leaderboard.tables import build_tables

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
    """Reported rows A-F whose win rates, coverage and order are worked by hand in the tests below."""
    row = {"split": "test", "variant": "unknown", "source": "s", "scale": "0-100"}
    rows = [
        {**row, "model": "A", "task": "toy", "metric": "accuracy", "value": 80.0},
        {**row, "model": "A", "task": "toy", "metric": "error", "value": 5.0},
        {**row, "model": "A", "task": "ave", "metric": "accuracy", "value": 70.0},
        {**row, "model": "A", "task": "vggss", "metric": "cIoU", "value": 30.0},
        {**row, "model": "B", "task": "toy", "metric": "accuracy", "value": 60.0, "variant": "single-task"},
        {**row, "model": "B", "task": "ave", "metric": "accuracy", "value": 75.0, "variant": "single-task"},
        {**row, "model": "B", "task": "vggss", "metric": "cIoU", "value": 40.0, "variant": "single-task"},
        {**row, "model": "C", "task": "toy", "metric": "accuracy", "value": 80.0, "variant": "unified"},
        {**row, "model": "D", "task": "toy", "metric": "error", "value": 10.0, "note": "only the error was reported"},
        {**row, "model": "E", "task": "ref_avs", "split": "test_n", "metric": "S", "value": 0.10, "scale": "0-1"},
        {**row, "model": "E", "task": "ave", "metric": "accuracy", "value": 90.0},
        {**row, "model": "F", "task": "ref_avs", "split": "test_n", "metric": "S", "value": 0.05, "scale": "0-1"},
    ]
    data = {
        "status": "reported, not rescored",
        "sources": {"s": {"document": "d", "paper": "p", "table": "t"}},
        "rows": rows,
    }
    path.write_text(json.dumps(data))
    return path


# Worked by hand for published_file. Per column, the share of the other rows beaten (ties half):
#   ave accuracy: A 70, B 75, E 90 -> A 0, B 0.5, E 1;  vggss cIoU: A 30, B 40 -> A 0, B 1;
#   ref_avs test_n S (lower is better): E 10, F 5 -> E 0, F 1;
#   toy accuracy: A 80, B 60, C 80 -> A 0.75, B 0, C 0.75;  toy error (lower is better): A 5, D 10 -> A 1, D 0.
# Per benchmark first (A's toy: mean of 0.75 and 1), then over benchmarks:
#   A (0 + 0 + 0.875) / 3, B (0.5 + 1 + 0) / 3, C 0.75 / 1, D 0 / 1, E (1 + 0) / 2, F 1 / 1.
HAND_RATES = {"A": (100 * 0.875 / 3, 3), "B": (50.0, 3), "C": (75.0, 1), "D": (0.0, 1), "E": (50.0, 2), "F": (100.0, 1)}
HAND_COVERAGE = {"A": 3, "B": 3, "C": 1, "D": 1, "E": 2, "F": 1}
# More benchmarks first; within 3, B's 50 beats A's 29.2; E, C, D, F have fewer than 3 benchmarks compared, so no
# rank, and F's 100 on one column comes last of all (coverage 1, then by name).
HAND_ORDER = ["B", "A", "E", "C", "D", "F"]


def test_win_rate_and_coverage_by_hand(tmp_path: Path) -> None:
    rows = collect_rows(None, published_file(tmp_path / "pub.json"))
    cols = columns(rows)
    # D reported only the error: it gets its own column beside the main metric, and counts in D's coverage.
    assert cols == [
        ("ave", "test", "accuracy"),
        ("vggss", "test", "cIoU"),
        ("ref_avs", "test_n", "S"),
        ("toy", "test", "accuracy"),
        ("toy", "test", "error"),
    ]
    rates = win_rates(rows, cols)
    by_model = {r.model: r for r in rows}
    for model, (mean, n) in HAND_RATES.items():
        assert rates[by_model[model].id].mean == pytest.approx(mean) and rates[by_model[model].id].n == n, model
    assert {m: coverage(by_model[m], cols) for m in HAND_COVERAGE} == HAND_COVERAGE
    ranked = ranked_rows(rows, cols)
    assert [r.model for r, *_ in ranked] == HAND_ORDER
    assert [rank for *_, rank in ranked] == [1, 2, None, None, None, None]
    s_value = by_model["E"].values[("ref_avs", "test_n", "S")]
    assert (s_value.value, s_value.reported, s_value.scale) == (pytest.approx(10.0), 0.10, "0-1")


def _names(label: str, item: dict[str, Any]) -> bool:
    """A header "task [split] metric arrow" naming the published row's task, split (or the default) and metric."""
    words = label.split()
    return (
        len(words) in (3, 4)
        and words[0] == item["task"]
        and words[-2] == item["metric"]
        and (words[1] == item["split"] if len(words) == 4 else item["split"] == default_split(item["task"]))
    )


def test_every_published_number_has_a_column_and_counts(tmp_path: Path) -> None:
    """Every bundled published row is shown under its own metric's header, and its benchmark counts in coverage."""
    published = json.loads((Path(__file__).parents[1] / "baselines" / "published.json").read_text())
    rows = collect_rows(None, True)
    tables = build_tables(rows)
    summary = tables[0]
    coverage_text = {r.row_id: r.cells[[h.label for h in summary.headers].index("Coverage")].text for r in summary.rows}
    benchmarks_per_row: dict[str, set[tuple[str, str]]] = {}
    for item in published["rows"]:
        row_id = slug(f"{item['model']}-{item['source']}")
        benchmarks_per_row.setdefault(row_id, set()).add((item["task"], item["split"]))
        shown = f"{item['value'] * (100 if item['scale'] == '0-1' else 1):.2f}"
        family = next(t for t in tables[1:] if t.title == family_of(item["task"]))
        family_row = next(r for r in family.rows if r.row_id == row_id)
        # a value in one of the benchmark's columns of the family table
        where = [i for i, h in enumerate(family.headers) if h.label.startswith(item["task"] + " ")]
        assert any(family_row.cells[i].text != "–" for i in where), item
        # and the number itself under its metric's header in some table
        placed = [
            t.title
            for t in tables
            for r in t.rows
            if r.row_id == row_id
            for h, c in zip(t.headers, r.cells, strict=True)
            if _names(h.label, item) and c.text == shown
        ]
        assert placed, item
    n_benchmarks = len({(r["task"], r["split"]) for r in published["rows"]})
    for row_id, benches in benchmarks_per_row.items():
        assert coverage_text[row_id] == f"{len(benches)}/{n_benchmarks}", row_id
    # The rows the issue named: their AVVP numbers are not the main metric, yet they are placed and counted.
    for model in ("timechat", "meerkat", "cmbs", "dhhn"):
        assert coverage_text[f"{model}-crab-md"] == f"1/{n_benchmarks}"


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
    # unified: dog right for a, c -> 50; single-task: a, b, c right, d missing -> 75; delta -25.
    [(row, deltas)] = transfer(rows, benchmarks(rows))
    assert row.model == "Toy-LLM" and deltas == {("toy", "test"): pytest.approx(-25.0)}
    written = build_site(entries, tmp_path / "site", published=False, generated="2025-06-02")
    page = written["html"].read_text()
    assert 'data-row="' in page and "Toy-LLM (single-task runs)" in page
    assert "https://" not in page.replace("http://www.w3.org", "")  # nothing remote
    md = written["markdown"].read_text()
    # 50 loses to its single-task runs (75): win rate 0 on 1 benchmark, too few to be ranked (shown as –).
    assert "| Toy-LLM | rescored | unified | – | 1/1 | – | 1 | 7.00M | tiny | 2025-06-01 |" in md
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
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "other.json").write_text("{}")  # JSON that is not an entry
    assert main(["leaderboard", "build", "--entries", str(tmp_path / "empty"), "--out", str(tmp_path / "s2")]) == 2
    assert not (tmp_path / "s2").exists()  # nothing written


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
    rates = win_rates(rows, columns(rows))
    by_model = {r.model: rates[r.id] for r in rows}
    # Rescored: unified 50 loses to its single-task runs 75 on toy; the reported rows never enter that pool,
    # and the reported rows' rates are those worked by hand without the rescored rows.
    assert by_model["Toy-LLM"].mean == 0.0 and by_model["Toy-LLM (single-task runs)"].mean == 100.0
    for model, (mean, n) in HAND_RATES.items():
        assert (by_model[model].mean, by_model[model].n) == (pytest.approx(mean), n)
    # Rescored rows come first in the ranking, each source in its own order.
    order = [r.model for r, *_ in ranked_rows(rows, columns(rows))]
    assert order == ["Toy-LLM", "Toy-LLM (single-task runs)", *HAND_ORDER]


def test_a_submission_scored_under_both_tiers_gives_two_labelled_rows(tmp_path: Path) -> None:
    from crab_eval.leaderboard.tables import value_cell

    data_root = tmp_path / "data"
    write_music_avqa(data_root / "music_avqa")  # test questions 11-14, gold: two, no, no, left
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "submission.json").write_text(json.dumps({**META, "model": "Free-LLM"}))
    answers = {
        "11": "There are 2 instruments.",
        "12": "<answer> no </answer>",
        "13": "No.",
        "14": "<answer> right </answer>",
    }
    (sub / "music_avqa.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in answers.items()))
    entries = tmp_path / "entries"
    score_submission(sub, data_root, entries / "strict.json")
    argv = ["submit", "score", str(sub), "--data-root", str(data_root), "--out", str(entries / "flexible.json")]
    assert main([*argv, "--extract", "flexible"]) == 0
    rows = collect_rows(entries, published=False)
    assert len(rows) == 2
    strict, flexible = sorted(rows, key=lambda r: r.id.endswith("-flexible"))
    # strict: 11 and 13 carry no template (unparsed, wrong), 12 right, 14 wrong -> 1 of 4 = 25.
    # flexible: "2" is two (right), "No." is no (right), 12 right, 14 wrong -> 3 of 4 = 75.
    key = ("music_avqa", "test", "overall")
    assert strict.values[key].value == 25.0 and flexible.values[key].value == 75.0
    assert (strict.source_label, flexible.source_label) == ("", "flexible answer extraction")
    assert flexible.id == strict.id + "-flexible"
    for row in (strict, flexible):
        assert "unparsed under each answer-extraction tier: strict 2, flexible 0" in value_cell(row.values[key]).title
    assert flexible.provenance["answer extraction"] == "flexible" and strict.provenance["answer extraction"] == "strict"
    # The two tiers are never compared: each row is alone in its pool, so neither gets a win rate or a rank.
    assert column_win_rates(rows, key) == {}
    crab = {**META, "model": "Crab-like"}
    (sub / "submission.json").write_text(json.dumps(crab))
    (sub / "music_avqa.jsonl").write_text("".join(json.dumps({"id": k, "text": "<answer> two </answer>"}) + "\n"
                                                  for k in answers))  # fmt: skip
    score_submission(sub, data_root, entries / "crab.json")  # strict: right on 11 only -> 25, ties Free's strict row
    rows = collect_rows(entries, published=False)
    rates = column_win_rates(rows, key)
    assert len(rates) == 2 and all(rate == 0.5 for rate in rates.values())  # the strict pair tie; flexible alone
    assert not any(rid.endswith("-flexible") for rid in rates)
