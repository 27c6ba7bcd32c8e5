"""``accelerate launch --num_processes 2`` on the CPU (gloo) ends with the weights of a one-process run with the same
global batch: each process takes its half of the step's examples and data-parallel averaging restores the mean."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crab_eval.model.config import config_from_dict
from crab_eval.model.testing import fake_features, write_toy, write_toy_mask
from crab_eval.model.train import train

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.usefixtures("model_toy_tasks")]
TESTS = Path(__file__).parent

LAUNCHED = """
import json, sys
sys.path.insert(0, {tests!r})
import toy_task
from crab_eval.model.config import config_from_dict
from crab_eval.model.testing import fake_features, register_toy_tasks
from crab_eval.model.train import train
toy_task.register()
register_toy_tasks()
train(config_from_dict(json.load(open(sys.argv[1]))), features=fake_features, progress=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(root: Path, run: str) -> dict:
    return {
        "run_dir": str(root / run),
        "seed": 5,
        "tasks": [
            {"task": "toy", "data": str(root / "toy"), "split": "val"},
            {"task": "toy_mask", "data": str(root / "mask"), "split": "train"},
        ],
        "adapter": {"kind": "ilora", "dropout": 0.0},  # dropout masks would differ between process layouts
        "train": {
            "steps": 3,
            "batch_size": 4,
            "lr": 2e-3,
            "checkpoint_every": 3,
            "router_log_every": 3,
            "warmup_ratio": 0.0,
        },
    }


def test_two_processes_match_one(tmp_path: Path) -> None:
    write_toy(tmp_path / "toy", "val", 12)
    write_toy_mask(tmp_path / "mask", "train", 6)
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED.format(tests=str(TESTS)))
    cfg_path = tmp_path / "two.json"
    cfg_path.write_text(json.dumps(config(tmp_path, "two")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--cpu",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(script),
        str(cfg_path),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the one-process reference runs meanwhile
        train(config_from_dict(config(tmp_path, "one")), features=fake_features, progress=False)
    finally:
        torch.set_num_threads(n)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]

    from safetensors.torch import load_file

    one = load_file(str(tmp_path / "one" / "checkpoints" / "step-0000003" / "trainable.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoints" / "step-0000003" / "trainable.safetensors"))
    assert one.keys() == two.keys()
    moved = 0
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)
    init_b = [k for k in one if k.endswith("lora_B")]
    moved = sum(float(one[k].abs().sum()) > 0 for k in init_b)
    assert moved == len(init_b)  # the runs really trained
    logs = [(tmp_path / r / "train_log.jsonl").read_text().splitlines() for r in ("one", "two")]
    losses = [[json.loads(line)["loss"] for line in log] for log in logs]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)  # the logged loss is the global batch's
    routers = [json.loads((tmp_path / r / "router_weights.jsonl").read_text()) for r in ("one", "two")]
    assert routers[0]["counts"] == routers[1]["counts"]  # router statistics are summed over processes
