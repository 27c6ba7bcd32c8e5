"""crab-eval: official-exact scoring, transfer tables and regression checks for audio-visual LLM benchmarks.

The names below are the Python API (docs/api.md). They are imported on first use, so that ``import crab_eval``
loads nothing (no numpy, pandas or torch) and a command imports only what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_API = {
    "score": "crab_eval.api",
    "evaluate": "crab_eval.api",
    "load_results": "crab_eval.api",
    "RunResult": "crab_eval.results",
    "read_result": "crab_eval.results",
    "get_task": "crab_eval.registry",
    "register_task": "crab_eval.registry",
    "load_model": "crab_eval.models",
    "register_model": "crab_eval.models",
    "Model": "crab_eval.models.base",
    "Request": "crab_eval.models.base",
    "Response": "crab_eval.models.base",
}
__all__ = [
    "Model", "Request", "Response", "RunResult", "__version__", "evaluate", "get_task", "load_model", "load_results",
    "read_result", "register_model", "register_task", "score",
]  # fmt: skip

if TYPE_CHECKING:
    from crab_eval.api import evaluate, load_results, score
    from crab_eval.models import load_model, register_model
    from crab_eval.models.base import Model, Request, Response
    from crab_eval.registry import get_task, register_task
    from crab_eval.results import RunResult, read_result


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'crab_eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
