"""Memory of one large decode call: `VAE.decode` of 200,000 latents vs the loop a user would write
(decode batch by batch, then np.concatenate), each in a fresh process, peak RSS (VmHWM) growth
over the warmed-up process, as a multiple of the result's size. Median of repeats.

    python benchmarks/decode_memory.py [--model models/fashion-mnist] [--n 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
import numpy as np
from vaeport.runtime import VAE

def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

way, n = sys.argv[1], int(sys.argv[2])
vae = VAE.load(sys.argv[3], device="cpu")
z = vae.sample_latent(n, seed=0)
vae.decode(z[:256]); vae.decode(z[:256])  # sessions warm, arena at one batch
before = peak_mb()
if way == "runtime":
    x = vae.decode(z)
else:  # batches into a list, then one concatenate: what a hand-written loop does
    x = np.concatenate([vae.decode(z[i : i + 256]) for i in range(0, n, 256)])
print(before, peak_mb(), x.nbytes / 2**20)
"""


def measure(way: str, n: int, model: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, way, str(n), str(model)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    before, after, result = (float(v) for v in out.stdout.split())
    growth = (after - before) / result
    return {"baseline_mb": before, "peak_mb": after, "result_mb": result, "growth_over_result": growth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"runtime": [], "list + concatenate": []}
    for _ in range(args.repeats):
        for way in runs:  # alternating, each in its own process
            runs[way].append(measure("runtime" if way == "runtime" else "loop", args.n, args.model))
    rows = [
        [way, median([r["result_mb"] for r in rs]), median([r["peak_mb"] - r["baseline_mb"] for r in rs]),
         median([r["growth_over_result"] for r in rs])]
        for way, rs in runs.items()
    ]  # fmt: skip
    print(f"decode of {args.n:,} latents ({args.model.name}), peak RSS growth, median of {args.repeats}:")
    print_table(["way", "result MB", "peak growth MB", "x result"], rows)
    path = write_result("decode_memory", {"model": args.model.name, "n": args.n, "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
