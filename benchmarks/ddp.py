"""Training images/s with 1 process vs 2 processes (torchrun, gloo, CPU) at the same global batch,
and the communication share of a 2-process step.

    python benchmarks/ddp.py [--epochs 2] [--repeats 3]

This machine has 2 cores: 1 process uses both (2 threads); 2 processes get 1 thread each. So the
comparison shows the overhead of DDP here, not a speed-up; see docs/scaling.md for more machines.
The communication share is 1 - (2-process step time without gradient all-reduce, via DDP's
no_sync) / (normal 2-process step time), measured inside the same processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TUTORIAL_MODEL, median, print_table, write_result

from vaeport.train.cli import config_args
from vaeport.train.config import TrainConfig

BIN = Path(sys.executable).parent

COMM_PROBE = """
import os, time, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from vaeport.train.config import ModelConfig
from vaeport.train.vae import VAE
from vaeport.train.loss import vae_loss
dist.init_process_group("gloo")
torch.set_num_threads(1)
torch.manual_seed(0)
model = DistributedDataParallel(VAE(ModelConfig((1, 28, 28), 20, "mlp", (400,))))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(64, 1, 28, 28)
def step(sync):
    ctx = model.no_sync() if not sync else torch.enable_grad()
    with ctx:
        logits, mean, log_var = model(x, eps=torch.randn(64, 20))
        vae_loss(logits, x, mean, log_var, "bernoulli", 1.0).loss.backward()
    opt.step(); opt.zero_grad()
times = {True: [], False: []}
for i in range(60):
    for sync in (True, False):
        t = time.perf_counter(); step(sync); times[sync].append(time.perf_counter() - t)
if dist.get_rank() == 0:
    import statistics
    s, n = statistics.median(times[True][10:]), statistics.median(times[False][10:])
    print("COMM", s, n)
dist.destroy_process_group()
"""


def train(out: Path, processes: int, epochs: int) -> float:
    args = [*config_args(TrainConfig(**TUTORIAL_MODEL, epochs=epochs)), "--out", str(out), "--quiet"]
    if processes == 1:
        cmd = [str(BIN / "vae-train"), *args, "--threads", "2"]
    else:
        cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", str(processes), "-m", "vaeport.train", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return median([row["images_per_second"] for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[int, list[float]] = {1: [], 2: []}
    root = Path(tempfile.mkdtemp())
    try:
        for r in range(args.repeats):
            for processes in (1, 2):
                rates[processes].append(train(root / f"p{processes}-{r}", processes, args.epochs))
        probe = subprocess.run(
            [
                str(BIN / "torchrun"),
                "--standalone",
                "--nproc-per-node",
                "2",
                "--no-python",
                sys.executable,
                "-c",
                COMM_PROBE,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ},
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    synced, unsynced = (float(v) for v in probe.stdout.split("COMM")[1].split()[:2])
    share = 1 - unsynced / synced
    rows = [[f"{p} process{'es' if p > 1 else ''}", median(v), median(v) / median(rates[1])] for p, v in rates.items()]
    print_table(["training", "images/s", "x 1 process"], rows)
    print(f"communication share of a 2-process step (gradient all-reduce, gloo): {100 * share:.0f}%")
    path = write_result(
        "ddp",
        {
            "model": "MLP 784-400-20, global batch 128, Adam 1e-3, fashion-mnist",
            "cpu_cores": os.cpu_count(),
            "images_per_second": {str(p): v for p, v in rates.items()},
            "ratio_2_to_1": median(rates[2]) / median(rates[1]),
            "step_seconds_2proc": {"with_allreduce": synced, "no_sync": unsynced},
            "communication_share": share,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
