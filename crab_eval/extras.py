"""Optional dependencies: which extra of the package brings which module, and one clear line when one is missing.

The core install scores every task's test set; the rest is in extras (pyproject.toml): ``localization`` (opencv:
Ref-AVS masks and heatmap predictions), ``reports`` (pandas, matplotlib, scipy: tables, charts, affinity),
``leaderboard`` (jsonschema), ``media`` (audio and video decoding), ``model`` (torch, transformers, peft,
accelerate: training and inference); ``all`` is every one of them.
"""

from __future__ import annotations

import importlib.util

from crab_eval.errors import CrabEvalError

# Extra -> the modules it installs (top-level import names) and, for messages, their package names.
EXTRAS: dict[str, dict[str, str]] = {
    "localization": {"cv2": "opencv-python-headless"},
    "reports": {"pandas": "pandas", "matplotlib": "matplotlib", "scipy": "scipy"},
    "leaderboard": {"jsonschema": "jsonschema"},
    "media": {"soundfile": "soundfile", "av": "av", "scipy": "scipy"},
    "model": {
        "torch": "torch",
        "transformers": "transformers",
        "peft": "peft",
        "accelerate": "accelerate",
        "safetensors": "safetensors",
        "yaml": "pyyaml",
    },
}
# Module -> the first extra that brings it (scipy: reports).
EXTRA_OF: dict[str, str] = {}
for _extra, _modules in EXTRAS.items():
    for _module in _modules:
        EXTRA_OF.setdefault(_module, _extra)


class MissingExtra(CrabEvalError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def _install_hint(extras: list[str]) -> str:
    return f"pip install 'crab-eval[{','.join(extras)}]'"


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The user-facing error for a module one of the extras brings; None for any other missing module (a bug or a
    broken install, which keeps its traceback)."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    package = EXTRAS[extra][module]
    return MissingExtra(f"this needs {package}, which is not installed: {_install_hint([extra])}")


def require_extras(*extras: str) -> None:
    """Raise one ``MissingExtra`` naming every extra of ``extras`` with a module that is not installed (checked
    without importing anything)."""
    missing = [e for e in extras if any(importlib.util.find_spec(m) is None for m in EXTRAS[e])]
    if missing:
        modules = [p for e in missing for m, p in EXTRAS[e].items() if importlib.util.find_spec(m) is None]
        raise MissingExtra(f"this needs {', '.join(dict.fromkeys(modules))}, not installed: {_install_hint(missing)}")
