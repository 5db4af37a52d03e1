"""vaeport.runtime speed, side by side in one run (medians of alternating repeats):

1. decode images/s: vaeport.runtime (ONNX Runtime) vs torch eager with the same weights, B=1, 64, 256,
   each in its own fresh process, alternating;
   plus tiny batches on a one-thread session vs a thread per core (the runtime's default);
2. the decoder's FLOPs x images/s as a share of numpy sgemm GFLOP/s measured in the same run;
3. cold start in a fresh process (import, load with hash checks, sample 16) and its peak RSS,
   against a bare `import torch`: in this checkout's venv and in a fresh venv with the wheel;
4. `vae-generate` of N images (default 1,000,000) to .npy shards: images/s as a share of the raw
   decode loop (float32 shards, and uint8 ones), and peak RSS at N/10 vs N images.

    python benchmarks/runtime_speed.py [--model-dir models/fashion-mnist --run-dir RUN] [--gen-n 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import make_models
from common import median, print_table, write_result

from vaeport.runtime import VAE
from vaeport.train.load import load_run

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def decoder_flops(decoder: torch.nn.Module, latent_dim: int) -> float:
    """Multiply-adds x 2 of the Linear and Conv2d layers for one image."""
    macs = 0

    def hook(module: torch.nn.Module, _: object, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            macs += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook) for m in decoder.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.inference_mode():
        decoder(torch.zeros(1, latent_dim))
    for h in handles:
        h.remove()
    return 2.0 * macs


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - started)
    return 2 * n**3 / median(times) / 1e9


# Each side decodes in its own fresh process, as deployed: the runtime never has torch loaded, and
# in one process the idle-spinning thread pools of one library steal the cores from the other
# (timed in one process, torch ran the MLP decoder at 82k img/s at B=256 between ONNX Runtime calls;
# in its own process, 140k).
DECODE_CHILD = """
import json, sys, time
which, model_dir, run_dir, batches = sys.argv[1], sys.argv[2], sys.argv[3], [int(b) for b in sys.argv[4:]]
if which == "torch":
    import torch
    from pathlib import Path
    from vaeport.train.load import load_run
    from vaeport.train.torch_eval import numpy_prior
    from vaeport.train.vae import DecoderImage
    model = load_run(Path(run_dir))[0]
    decoder, prior = DecoderImage(model.decoder).eval(), numpy_prior(model)
    torch.inference_mode().__enter__()
    make = lambda b: (lambda z=torch.from_numpy(prior.sample(prior.noise(0, 0, b))): decoder(z))
else:
    from vaeport.runtime import VAE
    vae = VAE.load(model_dir, device="cpu")
    make = lambda b: (lambda z=vae.sample_latent(b, seed=0): vae.decode(z))
rates = {}
for batch in batches:
    call, loops = make(batch), max(1, 2048 // batch)  # enough work per timing at small batches
    for _ in range(loops):
        call()
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(loops):
            call()
        rounds.append(batch * loops / (time.perf_counter() - started))
    rates[batch] = sorted(rounds)[1]
print(json.dumps(rates))
"""


def decode_rates(model_dir: Path, run_dir: Path, batches: list[int], repeats: int) -> dict[int, dict[str, object]]:
    """img/s of vaeport.runtime and torch eager, each in alternating fresh processes."""
    runs: dict[str, list[dict[str, float]]] = {"vaeport": [], "torch": []}
    for _ in range(repeats):
        for which in ("vaeport", "torch"):
            args = [PY, "-c", DECODE_CHILD, which, str(model_dir), str(run_dir), *map(str, batches)]
            out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
            runs[which].append(json.loads(out.splitlines()[-1]))
    rates: dict[int, dict[str, object]] = {}
    for batch in batches:
        ours = [r[str(batch)] for r in runs["vaeport"]]
        theirs = [r[str(batch)] for r in runs["torch"]]
        rates[batch] = {"vaeport": ours, "torch": theirs, "ratio": median(ours) / median(theirs)}
    return rates


def small_batch_rates(model_dir: Path, repeats: int) -> dict[int, dict[str, object]]:
    """Decode img/s of a one-thread session vs one with a thread per core, at tiny batch sizes
    (does a single image pay more for the thread pool's hand-off than it gains?)."""
    single = VAE.load(model_dir, device="cpu", threads=1)
    pooled = VAE.load(model_dir, device="cpu", threads=os.cpu_count() or 1)
    rates: dict[int, dict[str, object]] = {}
    for batch in (1, 2, 4, 8):
        z = single.sample_latent(batch, seed=0)
        loops = max(1, 1024 // batch)
        one, many = [], []
        single.decode(z)
        pooled.decode(z)
        for _ in range(repeats):
            for vae, out in ((single, one), (pooled, many)):
                started = time.perf_counter()
                for _ in range(loops):
                    vae.decode(z)
                out.append(batch * loops / (time.perf_counter() - started))
        rates[batch] = {"one_thread": one, "thread_per_core": many, "ratio": median(one) / median(many)}
    return rates


# ru_maxrss survives fork+exec on Linux (a child would report the parent's peak); VmHWM belongs
# to the child's own address space.
PEAK_RSS = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

COLD_RUNTIME = (
    PEAK_RSS
    + """
import sys, time
t = time.perf_counter()
from vaeport.runtime import VAE
vae = VAE.load(sys.argv[1], device="cpu")
vae.sample(16, seed=0)
print(time.perf_counter() - t, peak_rss_mb())
"""
)
COLD_TORCH = (
    PEAK_RSS
    + """
import sys, time
t = time.perf_counter()
import torch
print(time.perf_counter() - t, peak_rss_mb())
"""
)


def cold(script: str, *args: str, python: str = PY) -> tuple[float, float, float]:
    """(process wall seconds, in-process seconds, peak RSS MB) of a fresh interpreter."""
    started = time.perf_counter()
    out = subprocess.run([python, "-c", script, *args], capture_output=True, text=True, check=True).stdout.split()
    return time.perf_counter() - started, float(out[0]), float(out[1])


def wheel_venv(tmp: Path) -> str:
    """A fresh venv with vaeport[cpu] installed from the built wheel, as users get it (no torch, and
    no editable-install import hook, which costs this checkout's venv ~15 ms per start)."""
    dist, venv = tmp / "dist", tmp / "venv"
    subprocess.run([PY, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], check=True, capture_output=True)
    subprocess.run([PY, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = next(dist.glob("vaeport-*.whl"))
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"{wheel}[cpu]"], check=True)
    return python


def cold_starts(model_dir: Path, runtime_python: str) -> dict[str, object]:
    """Alternating fresh processes: the runtime (import, verified load, sample 16) vs `import torch`."""
    runtime, bare_torch = [], []
    for _ in range(5):
        runtime.append(cold(COLD_RUNTIME, str(model_dir), python=runtime_python))
        bare_torch.append(cold(COLD_TORCH))
    return {
        "runtime_process_seconds": [c[0] for c in runtime],
        "runtime_in_process_seconds": [c[1] for c in runtime],
        "runtime_peak_rss_mb": [c[2] for c in runtime],
        "import_torch_process_seconds": [c[0] for c in bare_torch],
        "import_torch_peak_rss_mb": [c[2] for c in bare_torch],
        "ratio_runtime_to_torch": median([c[0] for c in runtime]) / median([c[0] for c in bare_torch]),
    }


RAW_LOOP = (
    PEAK_RSS
    + """
import sys, time
from vaeport.runtime import VAE
vae = VAE.load(sys.argv[1], device="cpu")
n, batch, chunk = int(sys.argv[2]), 256, 10_000
t = time.perf_counter()
for c in range(0, n, chunk):
    z = vae.sample_latent(min(chunk, n - c), seed=0, start=c)  # drawn as vae-generate draws them
    for s in range(0, len(z), batch):
        vae.decode(z[s : s + batch])
print(n / (time.perf_counter() - t), peak_rss_mb())
"""
)
GENERATE = (
    PEAK_RSS
    + """
import json, sys
from vaeport.runtime.cli import main
try:
    main([sys.argv[1], "-n", sys.argv[2], "--out", sys.argv[3], "--dtype", sys.argv[4], "--quiet"])
except SystemExit as exc:
    assert not exc.code, exc.code
summary = json.load(open(sys.argv[3] + "/generate-0-of-1.json"))
print(summary["images_per_second"], peak_rss_mb())
"""
)


def run_child(script: str, *args: str) -> tuple[float, float]:
    out = subprocess.run([PY, "-c", script, *args], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="model folder (default: build the shipped shape)")
    parser.add_argument("--run-dir", type=Path, default=None, help="its run folder, for the torch weights")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--gen-n", type=int, default=1_000_000)
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--name", default="runtime_speed", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vaeport-bench-"))
    try:
        if args.model_dir is None:
            args.run_dir, args.model_dir, _ = make_models(tmp / "m")
        model, _, _ = load_run(args.run_dir)
        flops = decoder_flops(model.decoder, model.config.latent_dim)
        results: dict[str, object] = {"model_dir": str(args.model_dir), "decoder_mflops_per_image": flops / 1e6}

        decode = decode_rates(args.model_dir, args.run_dir, [1, 64, 256], args.repeats)
        rows = [[b, median(r["vaeport"]), median(r["torch"]), r["ratio"]] for b, r in decode.items()]
        results["decode_images_per_second"] = decode
        print(f"torch threads {torch.get_num_threads()}; decoder {flops / 1e6:.2f} MFLOP/image")
        print_table(["batch", "vaeport img/s", "torch eager img/s", "x torch"], rows)

        small = small_batch_rates(args.model_dir, args.repeats)
        results["small_batch_one_thread_vs_thread_per_core"] = small
        print(f"\nsmall batches, a one-thread session vs {os.cpu_count()} threads (the runtime's default):")
        print_table(
            ["batch", "1 thread img/s", "per-core img/s", "ratio"],
            [[b, median(r["one_thread"]), median(r["thread_per_core"]), r["ratio"]] for b, r in small.items()],
        )

        sgemm = [sgemm_gflops() for _ in range(3)]
        achieved = flops * median(decode[256]["vaeport"]) / 1e9
        torch_achieved = flops * median(decode[256]["torch"]) / 1e9
        results["sgemm_gflops"] = sgemm
        results["decoder_gflops_at_256"] = achieved
        results["share_of_sgemm_at_256"] = achieved / median(sgemm)
        # Neither side can beat the machine's sgemm rate, so 1 / torch's share bounds the ratio
        # any runtime can reach over torch at this batch size.
        results["torch_share_of_sgemm_at_256"] = torch_achieved / median(sgemm)
        results["ratio_ceiling_at_256"] = median(sgemm) / torch_achieved
        print(
            f"\ndecoder at B=256: {achieved:.1f} GFLOP/s = {100 * achieved / median(sgemm):.0f}% of numpy sgemm "
            f"({median(sgemm):.1f} GFLOP/s, same run); torch eager {torch_achieved:.1f} GFLOP/s = "
            f"{100 * torch_achieved / median(sgemm):.0f}%, so no runtime can be more than "
            f"{median(sgemm) / torch_achieved:.1f}x torch here"
        )

        for key, label, python in (
            ("cold_start", "this checkout's venv (editable install)", PY),
            ("cold_start_wheel", "a fresh venv with the vaeport[cpu] wheel", wheel_venv(tmp)),
        ):
            c = cold_starts(args.model_dir, python)
            results[key] = c
            print(
                f"\ncold start in {label} (fresh process: import, load + hashes, sample 16): "
                f"{median(c['runtime_process_seconds']):.3f} s, peak RSS {median(c['runtime_peak_rss_mb']):.0f} MB; "
                f"bare `import torch` process: {median(c['import_torch_process_seconds']):.3f} s, "
                f"{median(c['import_torch_peak_rss_mb']):.0f} MB -> {c['ratio_runtime_to_torch']:.3f} of torch's time"
            )

        if not args.skip_generate:
            n, small = args.gen_n, args.gen_n // 10
            raw_a = run_child(RAW_LOOP, str(args.model_dir), str(n))
            gen_big = run_child(GENERATE, str(args.model_dir), str(n), str(tmp / "gen-big"), "float32")
            shutil.rmtree(tmp / "gen-big")
            raw_b = run_child(RAW_LOOP, str(args.model_dir), str(n))
            gen_uint8 = run_child(GENERATE, str(args.model_dir), str(n), str(tmp / "gen-uint8"), "uint8")
            shutil.rmtree(tmp / "gen-uint8")
            gen_small = run_child(GENERATE, str(args.model_dir), str(small), str(tmp / "gen-small"), "float32")
            shutil.rmtree(tmp / "gen-small")
            raw_rate = median([raw_a[0], raw_b[0]])
            results["generate"] = {
                "n": n,
                "raw_decode_loop_images_per_second": [raw_a[0], raw_b[0]],
                "generate_images_per_second": gen_big[0],
                "share_of_raw_loop": gen_big[0] / raw_rate,
                "uint8_images_per_second": gen_uint8[0],
                "uint8_share_of_raw_loop": gen_uint8[0] / raw_rate,
                "peak_rss_mb": {str(small): gen_small[1], str(n): gen_big[1]},
                "rss_growth_small_to_n": gen_big[1] / gen_small[1] - 1,
            }
            print(
                f"\nvae-generate {n:,} images to .npy: {gen_big[0]:,.0f} img/s = {100 * gen_big[0] / raw_rate:.0f}% of "
                f"the raw decode loop ({raw_rate:,.0f} img/s); with --dtype uint8 {gen_uint8[0]:,.0f} img/s = "
                f"{100 * gen_uint8[0] / raw_rate:.0f}%; peak RSS {gen_small[1]:.0f} MB at {small:,} vs "
                f"{gen_big[1]:.0f} MB at {n:,} ({100 * (gen_big[1] / gen_small[1] - 1):+.1f}%)"
            )
        print(f"wrote {write_result(args.name, results)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
