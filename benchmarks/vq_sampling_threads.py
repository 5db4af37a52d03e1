"""How the runtime samples a VQ-VAE on CPU: row groups on a thread per core, each with a
single-threaded `prior_step` session (what `VAE.load` builds), against one session that splits
every small step across the cores (ONNX Runtime's intra-op threads), on the same model and rows.
Codes/s of `sample_latent`, the two alternating, median of repeats; the codes must be identical.

    python benchmarks/vq_sampling_threads.py [--model models/fashion-mnist-vq] [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_table, write_result

from vaeport.runtime import VAE
from vaeport.runtime.graph import Graph
from vaeport.runtime.session import SessionSettings, cpu_workers

ROOT = Path(__file__).resolve().parents[1]


def one_session(model: Path) -> VAE:
    """The model with its step graph in one session using every core, sampled one row group at a time."""
    vq = VAE.load(model, device="cpu")
    manifest = vq.manifest
    step_bytes = (model / manifest.graph_file("fp32", "prior_step")).read_bytes()
    vq._step = Graph(step_bytes, SessionSettings(device="cpu", threads=cpu_workers(None)), vq.batch_size)
    vq._workers = 1
    return vq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist-vq")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes = {"row groups, a thread per core (the runtime)": VAE.load(args.model, device="cpu"),
             "one session, intra-op threads": one_session(args.model)}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in modes}
    codes = {}
    for _ in range(args.repeats):
        for name, vq in modes.items():
            started = time.perf_counter()
            codes[name] = vq.sample_latent(args.n, seed=0)
            times[name].append(time.perf_counter() - started)
    same = len({c.tobytes() for c in codes.values()}) == 1
    rates = {name: args.n / median(t) for name, t in times.items()}
    first, second = rates.values()
    print_table(["mode", "code grids/s"], [[name, rate] for name, rate in rates.items()])
    print(f"ratio {first / second:.2f}x; identical codes: {same}")
    path = write_result(
        "vq_sampling_threads",
        {"model": args.model.name, "n": args.n, "repeats": args.repeats, "workers": cpu_workers(None),
         "grids_per_second": rates, "ratio": first / second, "identical_codes": same},
    )  # fmt: skip
    print(f"wrote {path}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
