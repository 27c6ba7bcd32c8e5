"""What ``crab-eval demo`` runs: the tasks, the models and their training seeds, budgets, run configs, file names.

The plan is the demo's data layer: the stages (crab_eval.demo) execute it and the reports (crab_eval.demo_report)
read it; neither of those is imported from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from crab_eval.errors import CrabEvalError

# The demo's tasks: SynthAV's three planted relations (crab_eval/synth/config.py RELATIONS), the conflict
# (ave + synth_ave_swap), the positive transfer to a data-scarce task (s4, 16 training clips, sharing its skill,
# output format and objects with ms3, 256 clips) and the null pair (music_avqa, ms3). avvp (family A, no planted
# relation) is left out of the default: at 600 steps it barely clears the trivial baselines (seg_event 7.5-11
# against 6.5), its score swings between training seeds, and it costs a sixth of the demo's time; --tasks adds it.
DEMO_TASKS = ("ave", "synth_ave_swap", "s4", "ms3", "music_avqa")
SYNTH_TASKS = ("ave", "synth_ave_swap", "avvp", "s4", "ms3", "music_avqa")  # what a plan may name
ADAPTERS = ("lora", "ilora")
DEFAULT_ADAPTERS = ("ilora",)  # one unified model by default (--adapters lora,ilora trains both)
# AVVP's official layout has dense labels for val and test only (train is weakly labelled): train on val.
TRAIN_SPLIT = {"avvp": "val"}
TEST_SPLIT = "test"
BASELINES = ("majority", "prior")
# Single-task steps per size (unified runs take the same steps with len(tasks) times the batch).
STEPS = {"tiny": 60, "small": 1000, "demo": 600}

# A small AV-LLM (docs/model.md): 2-layer Llama of width 64, 1 Q-Former query per segment and modality, 32x32
# frames and 32-band log-mels. Measured alone on one thread: ~37 ms a step of 4 examples (docs/demo.md).
MODEL = {
    "hidden_size": 64, "intermediate_size": 128, "layers": 2, "heads": 4, "kv_heads": 2, "vocab_size": 1024,
    "train_embeddings": True, "queries": 1, "projector_dim": 64, "mask_train_size": 32, "mask_image_dim": 32,
    "audio_encoder": {"dim": 32}, "visual_encoder": {"dim": 32, "grid": 4},
}  # fmt: skip
# LoRA scale alpha / r = 8: at 600 steps single-task AVE learned in 4 of 4 seeds (42-58) against 2 of 4 at
# alpha 16, where the others answered one class for every clip (docs/demo.md).
ADAPTER = {"r": 8, "alpha": 64, "dropout": 0.0, "heads": 3}
FEATURES = {"n_mels": 32, "frames_per_segment": 16, "image_size": 32}
FEATURES_SPEC = "crab_eval.demo:features"  # the features callable named in the run configs


class ModelRun(NamedTuple):
    name: str  # run folder, e.g. single_ave_seed1
    base: str  # the model without its seed, e.g. single_ave: what the result files call the model
    tasks: tuple[str, ...]
    kind: str  # adapter
    seed: int  # training seed


@dataclass
class DemoPlan:
    out: Path
    size: str = "demo"
    seed: int = 0
    tasks: tuple[str, ...] = DEMO_TASKS
    steps: int | None = None  # single-task steps; None: STEPS[size]
    batch_size: int = 4
    lr: float = 3e-3
    jobs: int = 2
    n_boot: int = 1000
    max_new_tokens: int = 64
    adapters: tuple[str, ...] = DEFAULT_ADAPTERS
    seeds: int = 1  # training seeds per model (seed, seed + 1, ...) on the one suite of ``seed``
    aa: bool = False  # also train the single-task models with ``seeds`` more seeds, for an A/A table
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.tasks, self.adapters = tuple(self.tasks), tuple(self.adapters)
        if self.steps is None:
            self.steps = STEPS[self.size]
        if self.steps < 1 or self.jobs < 1 or self.n_boot < 1 or self.seeds < 1:
            raise CrabEvalError("demo: steps, jobs, seeds and bootstrap must be at least 1")
        unknown = set(self.tasks) - set(SYNTH_TASKS)
        if unknown or not self.tasks:
            got = sorted(unknown) or "none"
            raise CrabEvalError(f"demo: tasks must be some of {', '.join(SYNTH_TASKS)}, got {got}")
        bad = set(self.adapters) - set(ADAPTERS)
        if bad or not self.adapters:
            raise CrabEvalError(f"demo: adapters must be some of {', '.join(ADAPTERS)}, got {sorted(bad) or 'none'}")

    def data_dir(self, task: str) -> Path:
        from crab_eval.synth.config import TASKS

        return self.out / "data" / TASKS[task][1]

    def train_seeds(self) -> list[int]:
        """The training seeds of every model (the arms of the transfer tables)."""
        return [self.seed + k for k in range(self.seeds)]

    def aa_seeds(self) -> list[int]:
        """The extra training seeds of the single-task models for the A/A table (none without ``aa``)."""
        return [self.seed + self.seeds + k for k in range(self.seeds)] if self.aa else []

    def model_name(self, base: str, seed: int) -> str:
        """``single_ave`` with one training seed and no A/A; ``single_ave_seed1`` etc. otherwise."""
        return base if self.seeds == 1 and not self.aa else f"{base}_seed{seed}"

    def models(self) -> list[ModelRun]:
        """Every run to train, longest first (unified runs take T times the examples of a single-task run), so the
        worker processes finish together."""
        runs = [
            ModelRun(self.model_name(f"unified_{kind}", seed), f"unified_{kind}", self.tasks, kind, seed)
            for kind in self.adapters
            for seed in self.train_seeds()
        ]
        # Single-task runs use LoRA: with one task, I-LoRA's router has nothing to route.
        runs += [
            ModelRun(self.model_name(f"single_{task}", seed), f"single_{task}", (task,), "lora", seed)
            for seed in self.train_seeds() + self.aa_seeds()
            for task in self.tasks
        ]
        return runs

    def result_paths(self, base: str, task: str, seeds: list[int] | None = None) -> list[Path]:
        """Result files of model ``base`` (e.g. ``single_ave``) on ``task``, one per training seed (default: the
        seeds of the transfer tables)."""
        chosen = self.train_seeds() if seeds is None else seeds
        return [result_path(self, self.model_name(base, seed), task) for seed in chosen]

    def budget(self, tasks: tuple[str, ...]) -> tuple[int, int]:
        """(optimizer steps, batch size) of a run on ``tasks``: the same steps, ``batch_size`` examples a task."""
        assert self.steps is not None, "DemoPlan.steps is resolved from the size before planning"
        return self.steps, self.batch_size * len(tasks)

    def examples(self, tasks: tuple[str, ...]) -> int:
        steps, batch = self.budget(tasks)
        return steps * batch


def result_path(plan: DemoPlan, model: str, task: str) -> Path:
    return plan.out / "results" / model / f"{task}.json"


def run_config(plan: DemoPlan, model: ModelRun) -> dict[str, Any]:
    """The model package's run configuration (docs/model.md) of one run."""
    steps, batch_size = plan.budget(model.tasks)
    unified = len(model.tasks) > 1
    return {
        "run_dir": str(plan.out / "runs" / model.name),
        "seed": model.seed,
        "resume": True,
        "tasks": [
            {"task": t, "data": str(plan.data_dir(t)), "split": TRAIN_SPLIT.get(t, "train"), "weight": 1.0}
            for t in model.tasks
        ],
        "model": MODEL,
        "adapter": {"kind": model.kind, **ADAPTER},
        "train": {
            "steps": steps, "batch_size": batch_size, "lr": plan.lr, "warmup_ratio": 0.05,
            "schedule": "cosine", "checkpoint_every": max(1, steps // 2), "log_every": 1,
            "router_log_every": max(1, steps // 10) if model.kind == "ilora" else 0,
            "affinity_every": max(1, steps // 8) if unified else 0, "affinity_batch": 4,
            "features": FEATURES_SPEC,
        },
    }  # fmt: skip


def run_info(plan: DemoPlan, model: ModelRun) -> dict[str, Any]:
    """The ``run`` section of a model's result files. ``model`` names the configuration without the seed, so the
    runs of one arm share model, variant and adapter and differ by ``seed`` only."""
    steps, batch_size = plan.budget(model.tasks)
    return {
        "model": f"synthav-demo-{model.base}",
        "variant": "unified" if len(model.tasks) > 1 else "single",
        "adapter": model.kind,
        "seed": model.seed,
        "steps": steps,
        "batch_size": batch_size,
        "tasks": ",".join(model.tasks),
        "suite_size": plan.size,
    }


def plan_dict(plan: DemoPlan) -> dict[str, Any]:
    data = asdict(plan)
    data["out"] = str(plan.out)
    data["tasks"] = list(plan.tasks)
    data["adapters"] = list(plan.adapters)
    data.pop("timings")
    return data
