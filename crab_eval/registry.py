"""Task registry: adapters register themselves with ``@register_task``."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, TypeVar

from crab_eval.errors import CrabEvalError

if TYPE_CHECKING:
    from crab_eval.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}
T = TypeVar("T", bound="type[Task]")


def register_task(cls: T) -> T:
    """Class decorator: make a task adapter available under its ``id``."""
    task_id = cls.id
    if task_id in _TASKS and _TASKS[task_id] is not cls:
        raise RuntimeError(f"task id {task_id!r} registered twice ({_TASKS[task_id].__name__}, {cls.__name__})")
    _TASKS[task_id] = cls
    return cls


_loaded = False


def _load_adapters() -> None:
    """Import every module of ``crab_eval.tasks`` once, so that their decorators run."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("crab_eval.tasks")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"crab_eval.tasks.{info.name}")
    _loaded = True


def task_ids() -> list[str]:
    _load_adapters()
    return sorted(_TASKS)


def get_task(task_id: str) -> Task:
    """A fresh adapter instance for ``task_id``; an unknown id is a user error listing the known ones."""
    _load_adapters()
    try:
        return _TASKS[task_id]()
    except KeyError:
        known = ", ".join(sorted(_TASKS)) or "none"
        raise CrabEvalError(f"unknown task {task_id!r}; known tasks: {known}") from None
