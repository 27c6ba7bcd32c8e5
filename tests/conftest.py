import os
import tempfile
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# The decoded ground-truth cache (crab_eval/gt_cache.py) of this test session lives in a temporary directory,
# removed at exit: the suite never writes to ~/.cache and never reads a cache left by an earlier run.
_GT_CACHE = tempfile.TemporaryDirectory(prefix="crab-eval-test-gt-cache-")
os.environ["CRAB_EVAL_CACHE"] = _GT_CACHE.name

from crab_eval.registry import TASKS  # noqa: E402
from crab_eval.tasks import BUILTIN  # noqa: E402


def _extra_tasks() -> list[str]:
    return sorted(set(TASKS.registered()) - set(BUILTIN))


def pytest_collection_finish(session: pytest.Session) -> None:
    """No test module registers a task when it is imported: registrations live in fixtures, which undo them."""
    if _extra_tasks():
        raise pytest.UsageError(f"test modules registered tasks at import: {_extra_tasks()}; use a fixture")


@pytest.fixture(autouse=True)
def _registry_restored() -> Iterator[None]:
    """Whatever a test registers is gone after it (the registry is global)."""
    with TASKS.isolated():
        yield


@pytest.fixture()
def register_tasks() -> Callable[..., None]:
    """Register task classes for the test (undone afterwards by ``_registry_restored``)."""

    def register(*classes: type) -> None:
        for cls in classes:
            TASKS.register(cls)

    return register


@pytest.fixture()
def toy(register_tasks: Callable[..., None]) -> None:
    """The toy task of tests/toy_task.py, registered for the test."""
    import toy_task

    register_tasks(toy_task.ToyTask)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny matrices: one torch thread is faster, and far faster on a busy machine (no oversubscription)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model_toy_tasks() -> Iterator[None]:
    """ "toy" and "toy_mask" (crab_eval/model/testing.py) for a module whose training runs are module fixtures;
    unregistered after the module."""
    import toy_task

    from crab_eval.model.testing import toy_mask_task

    with TASKS.isolated():
        TASKS.register(toy_task.ToyTask)
        TASKS.register(toy_mask_task())
        yield


# SynthAV task id -> the folder the suite writes it to; evaluate reads DATA_ROOT/<task id>/.
SYNTH_FOLDERS = {"ave": "AVE_Dataset", "avvp": "LLP", "music_avqa": "MUSIC-AVQA", "s4": "AVSBench/Single-source"}


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory):
    """A tiny SynthAV suite (seed 3: 4 test clips per task, real media) as a data root: ROOT/<task id>/."""
    from crab_eval.synth.suite import build

    suite = tmp_path_factory.mktemp("synth_suite")
    build(suite, seed=3, size="tiny", tasks=tuple(SYNTH_FOLDERS))
    root = tmp_path_factory.mktemp("synth_root")
    for task, folder in SYNTH_FOLDERS.items():
        (root / task).symlink_to(suite / folder, target_is_directory=True)
    return root
