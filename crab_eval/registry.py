"""Registries of plugins (tasks now, models next): id -> "module:Class", imported on first use.

Three sources fill a registry, and none of them imports anything until an id is looked up:
- the built-in table (``crab_eval.tasks.BUILTIN``): id -> "module:Class";
- the entry points of installed packages, group ``crab_eval.tasks`` (``name = id``, ``value = "module:Class"``):
  a package adds tasks by declaring ``[project.entry-points."crab_eval.tasks"] my_task = "my_pkg.tasks:MyTask"``;
- classes decorated with ``@register_task`` in modules the user imports, for example a folder of their own task
  modules given to the command line (``crab-eval --include DIR``, ``include_modules``).

An id may come from one source only; a clash is an error naming both. ``get_task`` keeps its contract: a fresh
adapter instance, and an unknown id is a user error listing the known ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from crab_eval.errors import CrabEvalError

if TYPE_CHECKING:
    from crab_eval.tasks.base import Task

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Classes of one kind by id, resolved lazily from "module:Class" targets.

    ``kind`` names the plugins in messages ("task"); ``group`` is the entry-point group; ``builtins`` maps ids to
    targets; ``base`` (a callable returning the base class, so that the registry need not import it) is checked
    when a class is materialised; ``id_attr`` is the class attribute holding the id.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Mapping[str, str] | Callable[[], Mapping[str, str]],
        base: Callable[[], type] | None = None,
        id_attr: str = "id",
    ) -> None:
        self.kind, self.group, self.id_attr = kind, group, id_attr
        self._builtins = builtins
        self._base = base
        self._targets: dict[str, tuple[str, str]] | None = None  # id -> (target, where it was declared)
        self._entry_points_read = False
        self._classes: dict[str, type[T]] = {}

    # ---- sources ----------------------------------------------------------------------------------------------
    def _declared(self) -> dict[str, tuple[str, str]]:
        """Built-in targets; entry points are read by ``_with_entry_points`` only when an id is not built in."""
        if self._targets is None:
            table = self._builtins() if callable(self._builtins) else self._builtins
            self._targets = {key: (target, "built in") for key, target in table.items()}
        return self._targets

    def _with_entry_points(self) -> dict[str, tuple[str, str]]:
        targets = self._declared()
        if not self._entry_points_read:
            for ep in metadata.entry_points(group=self.group):
                where = f"entry point of {ep.dist.name if ep.dist else 'an installed package'}"
                if ep.name in targets and targets[ep.name][0] != ep.value:
                    raise CrabEvalError(
                        f"{self.kind} id {ep.name!r} is declared twice: {targets[ep.name][0]} ({targets[ep.name][1]})"
                        f" and {ep.value} ({where})"
                    )
                targets.setdefault(ep.name, (ep.value, where))
            self._entry_points_read = True
        return targets

    # ---- registration -------------------------------------------------------------------------------------------
    def register(self, cls: C) -> C:
        """Class decorator: make ``cls`` available under its id (a folder of user modules, tests)."""
        key = getattr(cls, self.id_attr)
        target = _target_of(cls)
        known = self._classes.get(key)
        declared = self._with_entry_points().get(key)
        # The same module and name is the same class imported again (a folder included twice), not a clash.
        if (known is not None and _target_of(known) != target) or (declared is not None and declared[0] != target):
            other = _target_of(known) if known is not None else declared[0]  # type: ignore[index]
            raise RuntimeError(f"{self.kind} id {key!r} registered twice ({other}, {target})")
        self._classes[key] = cls
        return cls

    def ids(self) -> list[str]:
        """Every id, sorted; nothing is imported."""
        return sorted({*self._with_entry_points(), *self._classes})

    def get_class(self, key: str) -> type[T]:
        """The class registered under ``key``, imported now if it was only declared."""
        if key in self._classes:
            return self._classes[key]
        targets = self._declared()
        if key not in targets:
            targets = self._with_entry_points()
        if key not in targets:
            known = ", ".join(self.ids()) or "none"
            raise CrabEvalError(f"unknown {self.kind} {key!r}; known {self.kind}s: {known}")
        target, where = targets[key]
        cls = self._materialise(key, target, where)
        self._classes[key] = cls
        return cls

    def create(self, key: str) -> T:
        """A fresh instance of the class registered under ``key``."""
        return self.get_class(key)()

    def _materialise(self, key: str, target: str, where: str) -> type[T]:
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise CrabEvalError(f"{self.kind} {key!r} ({where}): target {target!r} is not 'module:Class'")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if where == "built in" or exc.name != module_name:
                raise  # a missing optional dependency: the CLI names the extra to install
            raise CrabEvalError(f"{self.kind} {key!r} ({where}): module {module_name!r} not found") from None
        cls: Any = module
        for part in attr.split("."):
            cls = getattr(cls, part, None)
        base = self._base() if self._base is not None else object
        if not isinstance(cls, type) or not issubclass(cls, base) or getattr(cls, self.id_attr, None) != key:
            kind = "class" if base is object else f"{base.__name__} class"
            raise CrabEvalError(f"{self.kind} {key!r} ({where}): {target} is not a {kind} with {self.id_attr} {key!r}")
        return cast(type[T], cls)

    def refresh(self) -> None:
        """Read the built-in table and the entry points again on the next lookup (after installing a package)."""
        self._targets, self._entry_points_read = None, False

    # ---- tests ----------------------------------------------------------------------------------------------------
    @contextmanager
    def isolated(self) -> Iterator[Registry[T]]:
        """Registrations made inside the block are undone at its end (tests that register toy tasks)."""
        saved = dict(self._classes), self._targets, self._entry_points_read
        self._targets = None if saved[1] is None else dict(saved[1])
        try:
            yield self
        finally:
            self._classes, self._targets, self._entry_points_read = saved

    def registered(self) -> dict[str, type[T]]:
        """The classes registered or materialised so far (a copy)."""
        return dict(self._classes)


def _target_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _task_base() -> type:
    from crab_eval.tasks.base import Task

    return Task


def _builtin_tasks() -> Mapping[str, str]:
    from crab_eval.tasks import BUILTIN

    return BUILTIN


TASKS: Registry[Task] = Registry("task", "crab_eval.tasks", _builtin_tasks, base=_task_base)


def register_task(cls: C) -> C:
    """Class decorator: make a task adapter available under its ``id``."""
    return TASKS.register(cls)


def task_ids() -> list[str]:
    return TASKS.ids()


def get_task(task_id: str) -> Task:
    """A fresh adapter instance for ``task_id``; an unknown id is a user error listing the known ones."""
    return TASKS.create(task_id)


def include_modules(folder: str | Path) -> list[str]:
    """Import every ``*.py`` module of ``folder`` (not those starting with ``_``), so that the plugins they
    decorate (``@register_task``) are registered; returns the module names. A module that fails to import is a
    user error naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CrabEvalError("--include folder not found", folder)
    names = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"crab_eval_include_{zlib.crc32(str(folder.resolve()).encode()):08x}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CrabEvalError("not an importable Python module", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise CrabEvalError(f"cannot import task module ({type(exc).__name__}: {exc})", path) from None
        names.append(name)
    return names
