"""The model interface: the harness hands a model batches of requests and gets one response per request.

A ``Request`` is built by the harness from the task alone: the sample, its split, ``Task.prompt(sample)`` (Crab's
prompt, with ``<video_start><video><video_end>``-style placeholders where the media go) and the generation
settings. The media are resolved only when a model asks (``Request.parts()``), so models that read no media (the
reference predictors, replayed files) never decode a frame. A ``Response`` is raw text (parsed by the task's own
parser at scoring time, exactly like a prediction file's ``text``), a structured prediction in the scoring
contract's form (masks, or a reference predictor's answer), or nothing: a missing prediction, counted as such.

Models are constructed from ``--model-args k=v,...`` through ``Model.from_args``: the values are converted by the
constructor's type hints, an unknown or missing argument is one user error naming the known ones.
"""

from __future__ import annotations

import inspect
import re
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from crab_eval.errors import CrabEvalError

if TYPE_CHECKING:
    from crab_eval.models.media import Part
    from crab_eval.tasks.base import Sample, Split, Task


@dataclass(frozen=True)
class Request:
    """One sample to answer. ``index`` is the sample's position in the evaluated split (seeds, order)."""

    task: Task
    split: Split
    sample: Sample
    index: int
    prompt: str
    generation: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.split.data_dir

    def parts(self) -> list[Part]:
        """The prompt cut at its media placeholders: text pieces and media references, in prompt order."""
        from crab_eval.models.media import prompt_parts

        return prompt_parts(self.prompt, self.sample, self.data_dir)


@dataclass(frozen=True)
class Response:
    """``text`` (raw model output), ``prediction`` (the contract's structured form) or neither (missing)."""

    text: str | None = None
    prediction: Any = None

    def __post_init__(self) -> None:
        if self.text is not None and self.prediction is not None:
            raise ValueError("a response holds text or a prediction, not both")

    @property
    def missing(self) -> bool:
        return self.text is None and self.prediction is None

    def row(self, sample_id: str) -> dict[str, Any] | None:
        """The prediction file's line, or None for a missing prediction (the scorer counts it)."""
        if self.text is not None:
            return {"id": sample_id, "text": self.text}
        if self.prediction is not None:
            return {"id": sample_id, "prediction": self.prediction}
        return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Response:
        """A prediction file's line (``text`` or ``prediction``) as a response."""
        if row.get("text") is not None and row.get("prediction") is not None:
            raise CrabEvalError(f"id {row.get('id')!r}: give exactly one of 'prediction' and 'text'")
        return cls(text=row.get("text"), prediction=row.get("prediction"))


class Model(ABC):
    """Base class of every model. Subclasses declare ``id`` and ``description`` and implement ``generate``.

    The constructor's keyword parameters are the model's ``--model-args``; a parameter named ``device`` receives
    the process's device under data-parallel runs unless the user gives one.
    """

    id: ClassVar[str]
    description: ClassVar[str] = ""
    args: dict[str, Any]  # the arguments as given (recorded in every result's provenance)

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        instance = super().__new__(cls)
        instance.args = dict(kwargs)
        return instance

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order. Requests of one call share a task and split."""

    def run_info(self) -> dict[str, Any]:
        """Run metadata defaults for result files (``model``, and ``variant``, ``adapter``, ``seed`` where the
        model knows them); the user's ``--name``/``--variant``/... override them."""
        return {"model": self.id}

    def describe(self) -> dict[str, Any]:
        """Provenance of the model beyond its arguments (checkpoint, classes, versions, the prompt format)."""
        return {}

    def model_input(self, request: Request) -> str:
        """The text the model is given for ``request`` (before media tokens are expanded), for provenance."""
        return request.prompt

    @classmethod
    def from_args(cls, args: Mapping[str, str], defaults: Mapping[str, Any] | None = None) -> Model:
        """The model built from string arguments converted by the constructor's type hints; ``defaults`` fill
        parameters the user did not give (e.g. ``device``), where the constructor has them."""
        params = _parameters(cls)
        unknown = sorted(set(args) - set(params))
        if unknown:
            known = ", ".join(params) or "none"
            raise CrabEvalError(f"model {cls.id!r} has no argument {unknown[0]!r}; its arguments: {known}")
        kwargs: dict[str, Any] = {}
        for name, (kind, required) in params.items():
            if name in args:
                kwargs[name] = _convert(cls.id, name, args[name], kind)
            elif defaults and name in defaults and defaults[name] is not None:
                kwargs[name] = defaults[name]
            elif required:
                raise CrabEvalError(f"model {cls.id!r} needs --model-args {name}=...")
        model = cls(**kwargs)
        model.args = dict(args)
        return model


def _parameters(cls: Any) -> dict[str, tuple[Any, bool]]:
    """Keyword parameters of ``cls.__init__``: name -> (type hint, required)."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: take the values as strings
        hints = {}
    out = {}
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[name] = (hints.get(name, str), param.default is inspect.Parameter.empty)
    return out


def _convert(model: str, name: str, value: str, kind: Any) -> Any:
    """A string argument as the type the constructor declares (``X | None`` takes ``none``)."""
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, _UnionType) else (kind,)
    if type(None) in options and value.strip().lower() in ("none", "null", ""):
        return None
    for option in (o for o in options if o is not type(None)):
        try:
            if option is bool:
                return parse_bool(value)
            if option in (int, float, str):
                return option(value)
            if option is Path:
                return Path(value)
        except ValueError:
            continue
    expected = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise CrabEvalError(f"model {model!r}: argument {name}={value!r} is not a valid {expected}")


_UnionType = type(int | None)


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


# A comma starts a new pair only where a `key=` follows, so values may hold commas (paths, lists).
_PAIR_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_.]*\s*=)")


def parse_pairs(text: str | None, option: str) -> dict[str, str]:
    """``"a=1,b=x,y"`` -> ``{"a": "1", "b": "x,y"}``; a piece without ``=`` is a user error naming ``option``."""
    if not text or not text.strip():
        return {}
    pairs: dict[str, str] = {}
    for piece in _PAIR_SPLIT.split(text):
        key, sep, value = piece.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CrabEvalError(f"{option}: expected KEY=VALUE[,KEY=VALUE...], got {piece.strip()!r}")
        if key in pairs:
            raise CrabEvalError(f"{option}: {key!r} is given twice")
        pairs[key] = value.strip()
    return pairs


def literal(value: str) -> Any:
    """A generation setting's value: integer, float, boolean or none where it reads as one, else the string."""
    lowered = value.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


# Greedy decoding unless asked otherwise: a checkpoint's own generation_config (often sampling) must not change the
# numbers silently. Every setting is recorded in the result's provenance.
DEFAULT_GENERATION: dict[str, Any] = {"max_new_tokens": 64, "do_sample": False}


def generation_settings(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """``--gen-kwargs`` (a string or a mapping) over the defaults."""
    given = parse_pairs(text, "--gen-kwargs") if isinstance(text, str) or text is None else dict(text)
    values = {k: literal(v) if isinstance(v, str) else v for k, v in given.items()}
    return {**DEFAULT_GENERATION, **values}


def seed_batch(generation: dict[str, Any], requests: Sequence[Request]) -> None:
    """Pop ``seed`` from the generation settings and, if given, seed torch for this batch from the seed and the
    batch's first sample: with sampling, a batch's answers then do not depend on the batches run before it."""
    seed = generation.pop("seed", None)
    if seed is not None:
        import torch

        torch.manual_seed(int(seed) * 1_000_003 + requests[0].index)


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
