"""vaeport's Python API end to end on the built-in digits: fit, evaluate, export, sample, score.

    python examples/quickstart.py out/demo

Writes out/demo/run (the run folder, with eval.json), out/demo/model (the model folder: fp32,
fp16 and, when it passes its accuracy gate, int8 graphs) and out/demo/samples.png (64 samples
drawn by the torch-free runtime), and prints how many test images and noise images the anomaly
score flags (it is calibrated at export on 500 training images held out of training).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vaeport.export import export
from vaeport.runtime import VAE
from vaeport.runtime.atomic import atomic_write
from vaeport.runtime.png import encode_png, grid
from vaeport.train import TrainConfig, evaluate, fit
from vaeport.train.datasets import load_dataset
from vaeport.train.evaluation import save_eval


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo")
    config = TrainConfig(
        dataset="digits", arch="mlp", hidden=(256,), latent_dim=8, epochs=30, batch_size=64,
        kl_warmup_epochs=5, lr_schedule="cosine", holdout=500,
    )  # fmt: skip
    run = fit(config, out / "run", force=True)
    report = evaluate(run, k=100)
    save_eval(out / "run" / "eval.json", report)
    print(f"test -ELBO {report['test_neg_elbo']:.2f}, IWAE-100 bound {report['test_iwae_nll']:.2f} nats/image")
    folder = export(run, out / "model", fp16=True, int8=True, force=True, log=print)
    vae = VAE.load(folder)
    atomic_write(out / "samples.png", lambda f: f.write(encode_png(grid(vae.sample(64, seed=0)))))
    print(f"{vae!r}: wrote {out / 'samples.png'}")
    test = load_dataset("digits").test
    noise = np.random.default_rng(0).random((len(test), 1, 8, 8), dtype=np.float32)
    flagged = [int(vae.score(x)["flagged"].sum()) for x in (test, noise)]
    print(f"anomaly flags: {flagged[0]} of {len(test)} test digits, {flagged[1]} of {len(noise)} noise images")


if __name__ == "__main__":
    main()
