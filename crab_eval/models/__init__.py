"""Models by name: the built-in table, the entry points of installed packages, ``@register_model`` classes.

The same lazy registry as the tasks (``crab_eval.registry.Registry``): nothing is imported until a model is looked
up, so ``crab-eval evaluate --model majority`` never imports torch. A package adds a model without editing this
repository::

    [project.entry-points."crab_eval.models"]
    my_model = "my_package.models:MyModel"    # a crab_eval.models.base.Model subclass with id "my_model"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from crab_eval.registry import Registry

if TYPE_CHECKING:
    from crab_eval.models.base import Model

C = TypeVar("C", bound=type)

BUILTIN: dict[str, str] = {
    "crab-av": "crab_eval.models.crab_av:CrabAV",
    "hf": "crab_eval.models.hf:HFModel",
    "replay": "crab_eval.models.replay:Replay",
    "majority": "crab_eval.models.reference:Majority",
    "prior": "crab_eval.models.reference:Prior",
    "random": "crab_eval.models.reference:Random",
    "blind": "crab_eval.models.reference:Blind",
}


def _model_base() -> type:
    from crab_eval.models.base import Model

    return Model


MODELS: Registry[Model] = Registry("model", "crab_eval.models", BUILTIN, base=_model_base)


def register_model(cls: C) -> C:
    """Class decorator: make a model available under its ``id`` (a module given to ``--include``, tests)."""
    return MODELS.register(cls)


def model_ids() -> list[str]:
    return MODELS.ids()


def load_model(name: str, args: Mapping[str, str] | None = None, **defaults: Any) -> Model:
    """The model ``name`` built from string arguments (``--model-args``); ``defaults`` fill constructor
    parameters the user left out (the harness passes ``device``)."""
    return MODELS.get_class(name).from_args(dict(args or {}), defaults)
