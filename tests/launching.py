"""Training runs under ``accelerate launch`` from a test: the launched script (it registers the test tasks, then
trains with the fake features) and the command, with a free port and one thread per process."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent
LAUNCHED = """
import json, sys
sys.path.insert(0, {tests!r})
import toy_task
from crab_eval.model.config import config_from_dict
from crab_eval.model.testing import fake_features, register_toy_tasks
from crab_eval.model.train import train
from accelerate import PartialState
toy_task.register()
register_toy_tasks()
train(config_from_dict(json.load(open(sys.argv[1]))), features=fake_features, progress=False)
state = PartialState()  # the training's own state (a singleton): how many processes really ran
print(f"launched: process {{state.process_index}} of {{state.num_processes}}", flush=True)
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(folder: Path, name: str, config: dict[str, Any], *launch_args: str) -> list[str]:
    """``accelerate launch LAUNCH_ARGS`` of a training with ``config``; the script and config go to ``folder``."""
    script = folder / "launched.py"
    script.write_text(LAUNCHED.format(tests=str(TESTS)))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launch_args]
    return [*cmd, "--main_process_port", str(free_port()), str(script), str(path)]
