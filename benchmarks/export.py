"""Export time (with the parity gate) and fp32 vs fp16 vs int8 decode speed and accuracy on CPU.

    python benchmarks/export.py [--repeats 7]

The variants are timed side by side, alternating, in one run; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import make_models
from common import median, print_table, write_result

from vaeport.runtime import VAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _, model_dir, export_seconds = make_models(Path(tmp), fp16=True, int8=True)
        _, _, export_fp32_seconds = make_models(Path(tmp) / "plain")
        manifest = json.loads((model_dir / "vae.json").read_text())
        vaes = {
            v: VAE.load(model_dir, device="cpu", variant=v, batch_size=args.batch) for v in ("fp32", "fp16", "int8")
        }
        z = vaes["fp32"].sample_latent(args.batch, seed=0)
        rates: dict[str, list[float]] = {v: [] for v in vaes}
        for vae in vaes.values():
            vae.decode(z)
        for _ in range(args.repeats):
            for name, vae in vaes.items():
                started = time.perf_counter()
                vae.decode(z)
                rates[name].append(args.batch / (time.perf_counter() - started))
    parity = manifest["parity"]
    accuracy = {
        "fp32_worst_max_abs_vs_torch": max(c["max_abs"] for c in parity["fp32"]["checks"]),
        "fp16_worst_max_abs_vs_fp32": max(c["max_abs"] for c in parity["fp16"]["checks"]),
        "int8_reconstruction_mean_abs_pixel_diff": parity["int8"]["reconstruction_mean_abs_pixel_diff"],
        "int8_prior_decode_mean_abs_pixel_diff": parity["int8"]["prior_decode_mean_abs_pixel_diff"],
    }
    fp32 = median(rates["fp32"])
    rows = [[name, median(r), median(r) / fp32] for name, r in rates.items()]
    print(f"export (fp32 only, with parity gate): {export_fp32_seconds:.1f} s; with fp16+int8: {export_seconds:.1f} s")
    print(f"decode at batch {args.batch}, median of {args.repeats} alternating repeats:")
    print_table(["variant", "images/s", "x fp32"], rows)
    for key, value in accuracy.items():
        print(f"{key}: {value:.3g}")
    path = write_result(
        "export",
        {
            "model": manifest["model"]["architecture"] | {"latent_dim": manifest["model"]["latent_dim"]},
            "export_seconds_fp32_with_gate": export_fp32_seconds,
            "export_seconds_with_fp16_int8": export_seconds,
            "decode_batch": args.batch,
            "repeats": args.repeats,
            "decode_images_per_second": rates,
            "median_images_per_second": {r[0]: r[1] for r in rows},
            "speed_vs_fp32": {r[0]: r[2] for r in rows},
            "accuracy": accuracy,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
