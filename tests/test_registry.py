"""Stateless tasks and lazy registries: the notebook composition scores as ``crab-eval score`` does, a task is imported
only when used (so a missing optional package never stands in the way of another task), other packages add tasks
through entry points and users through ``--include DIR``; a second registry is a few lines."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import toy_task

from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.layouts.ave import OFFICIAL_CATEGORIES, write_dataset
from crab_eval.layouts.classification import make_entry, write_split
from crab_eval.layouts.ref_avs import Expression, random_masks, write_ref_avs
from crab_eval.predictions import read_predictions
from crab_eval.registry import TASKS, Registry, get_task, register_task, task_ids
from crab_eval.scoring import load_split, score, score_predictions
from crab_eval.tasks import BUILTIN
from crab_eval.tasks.base import Split, Task

TESTS = Path(__file__).parent
ROOT = TESTS.parent
LABELS = ["playing guitar", "dog barking", "playing drums", "lawn mowing"]


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT
    )


# ---- stateless tasks ---------------------------------------------------------------------------------------------
@pytest.fixture()
def ks_data(tmp_path: Path) -> tuple[Path, Path]:
    """Four ks clips and text answers, half in the file's spelling and half in another spelling of the same label."""
    write_split(tmp_path / "ks", "test", [make_entry("ks", label, [f"clip{i}"]) for i, label in enumerate(LABELS)])
    answers = ["playing guitar", "Dog_Barking", "playing drums", "Lawn-Mowing."]
    lines = [{"id": f"clip{i}.mp4|clip{i}.wav", "text": f"<answer>{a}</answer>"} for i, a in enumerate(answers)]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return tmp_path / "ks", preds


def test_notebook_composition_scores_as_the_command(ks_data: tuple[Path, Path], tmp_path: Path) -> None:
    data, preds = ks_data
    split = load_split(get_task("ks"), data, "test")
    assert [s.id for s in split] == [f"clip{i}.mp4|clip{i}.wav" for i in range(4)]  # the ids the file above uses
    task = get_task("ks")  # another instance: the split, not the task, holds the label spellings
    found = read_predictions(preds, task, split)
    by_hand = 100.0  # every answer names its clip's label, two of them in another spelling
    assert task.aggregate(score_predictions(task, split, found)) == {"accuracy": by_hand}
    assert score("ks", data, "test", preds).metrics == {"accuracy": by_hand}
    out = tmp_path / "r.json"
    argv = ["score", "--task", "ks", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["metrics"] == {"accuracy": by_hand}


def test_split_is_immutable_and_slices_to_a_split(ks_data: tuple[Path, Path]) -> None:
    data, _ = ks_data
    split = get_task("ks").load(data, "test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.context = None  # type: ignore[misc]
    assert isinstance(split.samples, tuple) and len(split) == 4 and split[0] is split.samples[0]
    half = split[:2]
    assert isinstance(half, Split) and len(half) == 2 and half.context is split.context and half.name == "test"
    assert list(split) == list(split.samples)


def test_predictions_need_a_split_of_their_task(ks_data: tuple[Path, Path]) -> None:
    data, preds = ks_data
    split = load_split(get_task("ks"), data, "test")
    with pytest.raises(CrabEvalError, match="need a split of that task"):
        read_predictions(preds, get_task("ucf"), split)
    with pytest.raises(CrabEvalError, match="need a split of that task"):
        read_predictions(preds, get_task("ks"), list(split))  # type: ignore[arg-type]


def test_split_name_is_checked_once_by_the_framework(ks_data: tuple[Path, Path]) -> None:
    data, _ = ks_data
    with pytest.raises(CrabEvalError, match="has no split 'dev'"):
        get_task("ks").load(data, "dev")


# ---- the built-in table --------------------------------------------------------------------------------------------
def test_builtin_table_lists_every_task_class_of_the_package() -> None:
    package = importlib.import_module("crab_eval.tasks")
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"crab_eval.tasks.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # A task class declares its own id; shared adapters (ClassificationTask, LocalizationTask) do not.
            if issubclass(cls, Task) and "id" in vars(cls) and cls.__module__ == module.__name__:
                assert not inspect.isabstract(cls), cls
                found[cls.id] = f"{cls.__module__}:{cls.__qualname__}"
    assert found == BUILTIN
    for task_id in BUILTIN:
        assert get_task(task_id).id == task_id


def test_lookups_import_only_the_task_asked_for() -> None:
    code = (
        "import sys\n"
        "from crab_eval.registry import get_task, task_ids\n"
        "assert len(task_ids()) >= 22\n"
        "get_task('ave')\n"
        "print(sorted(m for m in sys.modules if m.startswith('crab_eval.tasks.')))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['crab_eval.tasks.ave',", "'crab_eval.tasks.base']"]


def test_listing_the_tasks_loads_no_heavy_package() -> None:
    code = (
        "import sys\n"
        "from crab_eval.cli import main\n"
        "assert main(['tasks']) == 0\n"
        "heavy = ('cv2', 'PIL', 'pycocotools', 'torch', 'matplotlib', 'pandas', 'sklearn', 'scipy')\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED []"
    assert "ref_avs" in done.stdout and "ave" in done.stdout


def test_python_dash_m_crab_eval_lists_the_tasks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crab_eval", "tasks", "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert [t["id"] for t in json.loads(done.stdout)] == sorted(BUILTIN)


# ---- a missing optional package ------------------------------------------------------------------------------------
WITHOUT_CV2 = "import sys\nsys.modules['cv2'] = None  # import cv2 fails, as without the extra\n"


def test_ave_scores_without_cv2_and_ref_avs_names_the_extra(tmp_path: Path) -> None:
    ave = tmp_path / "ave"
    write_dataset(ave, {"test": [(OFFICIAL_CATEGORIES[2], "vidA", 2, 5)]})
    preds = tmp_path / "ave.jsonl"
    preds.write_text(json.dumps({"id": "vidA", "prediction": {"event": OFFICIAL_CATEGORIES[2], "start": 2, "end": 5}}))
    code = WITHOUT_CV2 + "from crab_eval.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    out = tmp_path / "ave.json"
    done = run_python(code, "score", "--task", "ave", "--data", str(ave), "--predictions", str(preds), "--output",
                      str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["metrics"] == {"accuracy": 100.0}
    assert run_python(code, "tasks").returncode == 0

    rows = [Expression("vid_0_1_dog_1", "test_s", masks=random_masks(np.random.default_rng(0), (256, 256)))]
    write_ref_avs(tmp_path / "ref", rows)
    empty = tmp_path / "ref.jsonl"
    empty.write_text("")
    out = tmp_path / "ref.json"
    done = run_python(code, "score", "--task", "ref_avs", "--data", str(tmp_path / "ref"), "--predictions",
                      str(empty), "--output", str(out))  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "opencv-python-headless" in done.stderr and "pip install 'crab-eval[localization]'" in done.stderr
    assert not out.exists()


def test_missing_model_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code = "import sys\nsys.modules['torch'] = None\nfrom crab_eval.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    done = run_python(code, "train", "--config", str(tmp_path / "none.yaml"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'crab-eval[model]'" in done.stderr
    code = "import sys\nsys.modules['torch'] = None\nimport crab_eval.media\nprint('ok')\n"
    assert run_python(code).stdout == "ok\n"  # media decoding imports torch only to make tensors


# ---- plugins ------------------------------------------------------------------------------------------------------
def test_entry_point_adds_a_task(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "toy_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[crab_eval.tasks]\nplugin_toy = toy_plugin:PluginToy\n")
    (site / "toy_plugin.py").write_text(
        "from toy_task import ToyTask\n\n\nclass PluginToy(ToyTask):\n    id = 'plugin_toy'\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy_test.tsv").write_text("a\tv1\tdog\nb\tv2\tcat\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "prediction": {"label": "dog"}}\n{"id": "b", "text": "<answer> cow </answer>"}\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS)])}
    code = "import sys\nfrom crab_eval.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    listed = run_python(code, "tasks", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "plugin_toy" in [t["id"] for t in json.loads(listed.stdout)]
    out = tmp_path / "r.json"
    done = run_python(code, "score", "--task", "plugin_toy", "--data", str(data), "--predictions", str(preds),
                      "--output", str(out), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["metrics"] == {"accuracy": 50.0, "error": 50.0}  # a right, b wrong


def test_include_folder_of_user_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my_tasks.py").write_text(
        "from toy_task import ToyTask\nfrom crab_eval.registry import register_task\n\n\n"
        "@register_task\nclass MyToy(ToyTask):\n    id = 'my_toy'\n"
    )
    (mine / "_private.py").write_text("raise RuntimeError('never imported')\n")
    assert main(["--include", str(mine), "tasks", "--json"]) == 0
    assert "my_toy" in [t["id"] for t in json.loads(capsys.readouterr().out)]
    assert main(["--include", str(mine), "tasks"]) == 0  # included twice in one process: the same class again
    capsys.readouterr()
    (mine / "broken.py").write_text("import no_such_module_here\n")
    assert main(["--include", str(mine), "tasks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.py" in err and "no_such_module_here" in err
    assert main(["--include", str(tmp_path / "nowhere"), "tasks"]) == 2


def test_include_registration_is_undone_after_the_test() -> None:
    assert "my_toy" not in task_ids() and "toy" not in task_ids()


def test_registering_a_second_class_under_an_id_is_an_error(register_tasks) -> None:
    register_tasks(toy_task.ToyTask)
    other = type("ToyTask", (toy_task.ToyTask,), {"id": "toy", "__module__": "elsewhere"})
    with pytest.raises(RuntimeError, match="registered twice"):
        register_task(other)
    shadow = type("Ave", (toy_task.ToyTask,), {"id": "ave"})
    with pytest.raises(RuntimeError, match="registered twice"):
        register_task(shadow)


def test_entry_point_clashing_with_a_builtin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from crab_eval import registry

    clash = EntryPoint(name="ave", value="somewhere:Ave", group="crab_eval.tasks")
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [clash] if group == "crab_eval.tasks" else [])
    with TASKS.isolated():
        TASKS.refresh()  # read the sources again, with the clashing entry point
        with pytest.raises(CrabEvalError, match="declared twice"):
            task_ids()


# ---- a second registry --------------------------------------------------------------------------------------------
class EchoModel:
    """A stand-in model class: models are keyed by ``name``."""

    name = "echo"


class OtherModel:
    name = "other"


def test_a_second_registry_is_a_few_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    models: Registry[EchoModel] = Registry(
        "model", "crab_eval.models", {"echo": f"{__name__}:EchoModel"}, id_attr="name"
    )
    assert models.ids() == ["echo"]
    assert models.get_class("echo") is EchoModel and isinstance(models.create("echo"), EchoModel)
    models.register(OtherModel)
    assert models.ids() == ["echo", "other"]
    with pytest.raises(CrabEvalError, match="unknown model 'nope'; known models: echo, other"):
        models.get_class("nope")
    broken: Registry[EchoModel] = Registry(
        "model", "crab_eval.models", {"bad": f"{__name__}:EchoModel"}, id_attr="name"
    )
    with pytest.raises(CrabEvalError, match="is not a class with name 'bad'"):
        broken.get_class("bad")
