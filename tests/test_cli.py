"""Every command's --help: exit code 0 and an example; no command is an error with exit code 2 and the usage."""

from __future__ import annotations

import pytest

from crab_eval.cli import COMMANDS, main


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_top_level_help_lists_the_commands_and_include(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert all(command in out for command in COMMANDS) and "--include DIR" in out


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: crab-eval" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["score", "--no-such-option"])
    assert info.value.code == 2 and "crab-eval score: error:" in capsys.readouterr().err


def test_outputs_that_cannot_be_written_are_one_line_and_leave_nothing(
    toy: None, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy_test.tsv").write_text("q0\tv0\tdog\nq1\tv1\tcat\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "q0", "text": "<answer> dog </answer>"}\n')
    score = ["score", "--task", "toy", "--data", str(data), "--predictions", str(preds), "--output"]
    folder = tmp_path / "out_folder"
    folder.mkdir()
    assert main([*score, str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("*.samples.jsonl"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main([*score, str(afile / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "crab-eval score: error:" in err and "afile" in err
    assert not (tmp_path / "afile.samples.jsonl").exists()
