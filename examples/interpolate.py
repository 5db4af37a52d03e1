"""Embed the runtime: sample two images with the torch-free runtime and write the strip between them.

python examples/interpolate.py models/fashion-mnist out/interpolation.png [--steps 10 --seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaeport.runtime import VAE
from vaeport.runtime.atomic import atomic_write, ensure_folder
from vaeport.runtime.png import encode_png, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    vae = VAE.load(args.model_dir, device="auto")
    a, b = vae.sample_latent(2, seed=args.seed)
    rows = [vae.interpolate(a, b, steps=args.steps, method=m) for m in ("linear", "slerp")]
    ensure_folder(args.out.parent, "out's folder")
    atomic_write(args.out, lambda f: f.write(encode_png(grid(np.concatenate(rows), columns=args.steps))))
    print(f"wrote {args.out} (top: linear, bottom: slerp; {vae.device})")


if __name__ == "__main__":
    main()
