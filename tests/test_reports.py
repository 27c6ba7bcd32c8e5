"""The one table model of the reports layer: text, Markdown, CSV and HTML renderings, written out by hand."""

from __future__ import annotations

import pytest

from crab_eval.reports.table import Table, format_table

TABLE = Table(["task", "metric", "value"], [["ave", "accuracy", "42.42"], ["avvp", "seg|event", 15.2]], "Scores")


def test_text_pads_columns_and_strips_line_ends() -> None:
    assert TABLE.to_text() == (
        "task  metric     value\n----  ---------  -----\nave   accuracy   42.42\navvp  seg|event  15.2"
    )
    assert format_table(["a", "bb"], [["xyz", ""]]) == "a    bb\n---  --\nxyz"


def test_markdown_escapes_pipes_and_titles() -> None:
    assert TABLE.to_markdown() == (
        "## Scores\n\n"
        "| task | metric | value |\n"
        "| --- | --- | --- |\n"
        "| ave | accuracy | 42.42 |\n"
        "| avvp | seg\\|event | 15.2 |"
    )
    assert Table(["x"], []).to_markdown() == "| x |\n| --- |"


def test_csv_and_html_through_pandas() -> None:
    assert TABLE.to_csv() == "task,metric,value\nave,accuracy,42.42\navvp,seg|event,15.2\n"
    assert Table(["a, b"], [['say "hi"']]).to_csv() == '"a, b"\n"say ""hi"""\n'
    html = Table(["name"], [["<b>&</b>"]]).to_html()
    assert "<th>name</th>" in html and "<td>&lt;b&gt;&amp;&lt;/b&gt;</td>" in html and "<b>" not in html


def test_rows_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        Table(["a", "b"], [["1", "2"], ["3"]])
