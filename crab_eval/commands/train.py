"""``crab-eval train``: train the AV-LLM (single-task or unified) from a YAML config, through accelerate."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.extras import require_extras


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "train",
        "train the AV-LLM from a YAML config (one task: single-task variant; several: unified); resumes from the "
        "newest checkpoint in run_dir. Run under 'accelerate launch' for several processes or GPUs",
        "crab-eval train --config configs/unified_tiny.yaml train.steps=300 adapter.kind=ilora seed=1",
    )
    parser.add_argument("--config", required=True, help="YAML run config (see docs/model.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.lr=3e-4")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_extras("model")
    from crab_eval.model.config import load_config
    from crab_eval.model.train import train

    config = load_config(args.config, args.overrides)
    run_dir = train(config, progress=not args.no_progress)
    print(f"trained {config.variant} model ({config.adapter.kind}) on {', '.join(config.task_ids)}: {run_dir}")
    return 0
