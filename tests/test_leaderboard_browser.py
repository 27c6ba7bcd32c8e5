"""The leaderboard page in a real headless Chromium: what a person sees when they sort and filter.

Chromium and its driver come from Debian (``chromium``, ``chromium-driver``), installed by ``make browser`` (a
prerequisite of ``make test``, which CI runs as root), never by a test. When they are missing the test FAILS with
the command to run: a leaderboard whose page was never opened is not tested. The page is driven with selenium. A
screenshot is written for review to ``$CRAB_EVAL_ARTIFACTS`` (default: the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import toy_task
from test_leaderboard import HAND_COVERAGE, HAND_ORDER, published_file

from crab_eval.leaderboard.render import build_site, collect_rows
from crab_eval.leaderboard.submission import score_submission
from crab_eval.registry import TASKS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
pytestmark = pytest.mark.browser

ROWS = [("a", "v1", "dog"), ("b", "v1", "cat"), ("c", "v2", "dog"), ("d", "v3", "cow")]
RANK, COVERAGE, WIN_RATE = 3, 4, 5  # summary columns after Model, Source, Variant
COMMITTED = Path(__file__).parents[1] / "results" / "leaderboard"


def ensure_chromium() -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} missing: run 'make browser' (it installs chromium, chromium-driver)")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ensure_chromium()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install selenium (it belongs to the dev extras)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def toy_module() -> Iterator[None]:
    """The toy task for this module's fixtures and tests, unregistered after them."""
    with TASKS.isolated():
        TASKS.register(toy_task.ToyTask)
        yield


def toy_entry(root: Path) -> Path:
    """One rescored entry (unified + its single-task runs) of the toy task under ``root/entries``."""
    data = root / "data" / "toy"
    data.mkdir(parents=True)
    (data / "toy_test.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in ROWS))
    meta = {
        "schema_version": 1,
        "model": "Toy-LLM",
        "team": "Team T",
        "url": "https://example.org",
        "parameters": 7_000_000_000,
        "llm_backbone": "tiny",
        "encoders": {"audio": "mel"},
        "training_data": ["toy"],
        "variant": "unified",
        "date": "2025-06-01",
    }
    sub = root / "sub.zip"
    with zipfile.ZipFile(sub, "w") as archive:
        archive.writestr("submission.json", json.dumps(meta))
        archive.writestr(
            "toy.jsonl", "".join(json.dumps({"id": i, "prediction": {"label": "dog"}}) + "\n" for i in "abcd")
        )
        archive.writestr(
            "single_task/toy.jsonl",
            "".join(json.dumps({"id": i, "prediction": {"label": y}}) + "\n" for i, _, y in ROWS),
        )
    score_submission(sub, root / "data", root / "entries" / "toy.json")
    return root / "entries"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, toy_module: None) -> Path:
    """A page with the toy entry and the bundled published rows."""
    root = tmp_path_factory.mktemp("board")
    build_site(toy_entry(root), root / "site")
    return root / "site"


def visible_rows(driver: Any, table_id: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [r for r in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr") if r.is_displayed()]


def column_texts(driver: Any, table_id: str, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in visible_rows(driver, table_id)]


def header_button(driver: Any, table_id: str, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th button"):
        if button.text.startswith(label):
            return button
    raise AssertionError(f"no header {label!r} in {table_id}")


def numbers(texts: list[str]) -> list[float | None]:
    return [None if t in ("–", "") else float(t) for t in texts]


def test_page_renders_sorts_and_filters_in_chromium(driver: Any, site: Path) -> None:
    from selenium.webdriver.common.by import By

    rows = collect_rows(site.parent / "entries")
    driver.get((site / "index.html").as_uri())
    assert "leaderboard" in driver.title

    # Rows render: every row of the summary is on screen, with the rescored entry's name.
    shown = visible_rows(driver, "table-summary")
    assert len(shown) == len(rows) > 20
    assert column_texts(driver, "table-summary", 0)[:2] == ["Toy-LLM", "Toy-LLM (single-task runs)"]
    assert driver.find_element(By.ID, "shown-count").text == f"{len(rows)} of {len(rows)} rows shown"

    # Sorting: the first click on a numeric column puts the best first, missing values last; the second reverses.
    header_button(driver, "table-summary", "Mean win rate").click()
    first = numbers(column_texts(driver, "table-summary", WIN_RATE))
    present = [v for v in first if v is not None]
    assert present == sorted(present, reverse=True) and first[: len(present)] == present
    header_button(driver, "table-summary", "Mean win rate").click()
    again = numbers(column_texts(driver, "table-summary", WIN_RATE))
    assert [v for v in again if v is not None] == sorted(present)
    header_button(driver, "table-summary", "Model").click()
    names = column_texts(driver, "table-summary", 0)
    assert names == sorted(names, key=str.lower) and names != column_texts(driver, "table-summary", 0)[::-1]

    # Filters: hiding "reported" leaves only the two rescored rows, in every table.
    driver.find_element(By.CSS_SELECTOR, 'input[data-filter="source"][value="reported"]').click()
    assert column_texts(driver, "table-summary", 1) == ["rescored", "rescored"]
    assert driver.find_element(By.ID, "shown-count").text == f"2 of {len(rows)} rows shown"
    assert {t for t in column_texts(driver, "table-family-other", 1)} == {"rescored"}
    driver.find_element(By.CSS_SELECTOR, 'input[data-filter="variant"][value="single-task"]').click()
    assert column_texts(driver, "table-summary", 0) == ["Toy-LLM"]
    artifacts = Path(os.environ.get("CRAB_EVAL_ARTIFACTS", site))
    artifacts.mkdir(parents=True, exist_ok=True)
    driver.find_element(By.CSS_SELECTOR, 'input[data-filter="source"][value="reported"]').click()
    driver.find_element(By.CSS_SELECTOR, 'input[data-filter="variant"][value="single-task"]').click()
    assert len(visible_rows(driver, "table-summary")) == len(rows)

    # The provenance link of a row jumps to its section; the page logged no script errors.
    driver.find_element(By.LINK_TEXT, "Toy-LLM").click()
    assert driver.current_url.endswith("#prov-" + rows[0].id)
    section = driver.find_element(By.ID, "prov-" + rows[0].id)
    assert "sha256:" in section.text and "https://example.org" in section.text
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    driver.execute_script("window.scrollTo(0, 0)")
    shot = artifacts / "leaderboard.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_transfer_table_in_chromium(driver: Any, site: Path) -> None:
    driver.get((site / "index.html").as_uri())
    assert column_texts(driver, "table-transfer", 0) == ["Toy-LLM"]
    # unified 50 (dog right for a, c) minus single-task 100: -50.
    assert column_texts(driver, "table-transfer", 3) == ["-50.00"]


def test_summary_order_and_coverage_in_chromium(driver: Any, tmp_path: Path, toy_module: None) -> None:
    """The ranking rule as a reader sees it, on rows whose order and coverage are worked by hand (test_leaderboard)."""
    build_site(toy_entry(tmp_path), tmp_path / "site", published=published_file(tmp_path / "pub.json"))
    driver.get((tmp_path / "site" / "index.html").as_uri())
    # Rescored rows first; then more benchmarks before fewer; F's 100 on a single column comes last.
    assert column_texts(driver, "table-summary", 0) == ["Toy-LLM", "Toy-LLM (single-task runs)", *HAND_ORDER]
    expected = ["1/4", "1/4", *(f"{HAND_COVERAGE[m]}/4" for m in HAND_ORDER)]
    assert column_texts(driver, "table-summary", COVERAGE) == expected
    assert column_texts(driver, "table-summary", RANK) == ["–", "–", "1", "2", "–", "–", "–", "–"]
    assert numbers(column_texts(driver, "table-summary", WIN_RATE))[2:4] == [50.0, round(100 * 0.875 / 3, 1)]
    # D reported only the toy error: it has its own column in the family table and counts there. Family order by
    # win rate on toy: A (0.75 and 1 -> 87.5), C 75, B 0, D 0 (a tie, by name).
    headers = [h.text for h in header_buttons(driver, "table-family-other")]
    assert headers[3:5] == ["toy accuracy ↑", "toy error ↓"]
    assert column_texts(driver, "table-family-other", 0)[-4:] == ["A", "C", "B", "D"]
    d_row = [td.text for td in visible_rows(driver, "table-family-other")[-1].find_elements("tag name", "td")]
    assert d_row[3:6] == ["–", "10.00", "1/1"]


def header_buttons(driver: Any, table_id: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th button")


def test_committed_page_in_chromium(driver: Any, tmp_path: Path) -> None:
    """results/leaderboard as committed: real-data baseline rows, no fixture rows, every row's coverage as the
    entries and the published numbers give it, the summary in ranking order. Its screenshot is docs/leaderboard.png
    (``CRAB_EVAL_ARTIFACTS=DIR`` keeps it)."""
    manifest = json.loads((COMMITTED / "real-data.json").read_text())
    published = json.loads((Path(__file__).parents[1] / "baselines" / "published.json").read_text())["rows"]
    entries = [json.loads(p.read_text()) for p in sorted((COMMITTED / "entries").glob("*.json"))]
    covered = {e["submission"]["model"]: {(r["task"], r["split"]) for r in e["results"]} for e in entries}
    for item in published:
        covered.setdefault(f"{item['model']}|{item['source']}", set()).add((item["task"], item["split"]))
    total = len(set().union(*covered.values()))
    driver.get((COMMITTED / "index.html").as_uri())
    models = column_texts(driver, "table-summary", 0)
    sources = column_texts(driver, "table-summary", 1)
    cover = [int(t.split("/")[0]) for t in column_texts(driver, "table-summary", COVERAGE)]
    assert {t.split("/")[1] for t in column_texts(driver, "table-summary", COVERAGE)} == {str(total)}
    assert not [m for m in models if "fixture" in m.lower()]
    # The five benchmarks of the issue, each scored for real by the baselines.
    assert {"ave", "avvp", "music_avqa", "vggss", "unav"} <= set(manifest["tasks"])
    assert {"Majority baseline", "Class-prior baseline", "Random baseline"} <= set(models[:3])
    for name in ("Majority baseline", "Class-prior baseline", "Random baseline"):
        assert cover[models.index(name)] == len(covered[name]) >= 5
    # Reported rows: coverage as published.json gives it (rows are named by model; two sources may share a name).
    label = {"reported (Crab paper)": "crab_md", "reported (other papers)": "benchmarks_md"}
    for model, source, n in zip(models, sources, cover, strict=True):
        if source != "rescored":
            assert n == len(covered[f"{model}|{label[source]}"]), (model, source)
    # Order: rescored rows, then reported rows; within each, coverage never increases; the first rows cover > 1.
    assert sources == sorted(sources, key=lambda s: s != "rescored")
    for group in ("rescored", "reported"):
        mine = [n for n, s in zip(cover, sources, strict=True) if (s == "rescored") == (group == "rescored")]
        assert mine == sorted(mine, reverse=True)
    assert min(cover[:3]) > 1
    first_reported = sources.index(next(s for s in sources if s != "rescored"))
    assert cover[first_reported] > 1
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    artifacts = Path(os.environ.get("CRAB_EVAL_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    shot = artifacts / "leaderboard-committed.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
