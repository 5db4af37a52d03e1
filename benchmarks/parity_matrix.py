"""Cross-runtime parity matrix: the same seeded latents and test images through every runtime.

Columns: torch eager (when the run folder is given), ONNX Runtime CPU at graph optimization levels
disabled / basic / all, onnx.reference, onnxruntime-node, onnxruntime-web (wasm) in headless
Chromium, the fp16 and int8 variants, and ONNX Runtime CUDA when a GPU is present. Each is compared
with ONNX Runtime CPU (all optimizations, fp32): max and mean |difference| and pass/fail against
the tolerance of its kind. Missing tools are marked skipped with the reason, never faked.

    python benchmarks/parity_matrix.py [--model-dir models/fashion-mnist] [--run-dir runs/fashion-mnist]
    make parity
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "web"))
import webtools  # noqa: E402
from common import write_result  # noqa: E402

from vaeport.export.parity import FP32, ReferenceGraph, Tolerance  # noqa: E402
from vaeport.export.variants import FP16  # noqa: E402
from vaeport.runtime.graph import Graph  # noqa: E402
from vaeport.runtime.manifest import read_verified, verify_folder  # noqa: E402
from vaeport.runtime.session import SessionSettings, create_session, cuda_available  # noqa: E402

INT8 = Tolerance(rtol=0.0, atol=0.1)  # int8 is judged by its mean pixel difference at export; here a loose bound
BATCH = 16
REFERENCE_BATCH = 4


def inputs_for(manifest: Any, seed: int) -> dict[str, np.ndarray]:
    from vaeport.train.datasets import load_dataset

    training = manifest.training
    data = load_dataset(training["dataset"], None, training.get("image_size"), training["seed"])
    rng = np.random.default_rng(seed)
    images = data.test[rng.permutation(len(data.test))[:BATCH]].astype(np.float32)
    latents = rng.standard_normal((BATCH, manifest.latent_dim), dtype=np.float32)
    return {"encoder": images, "decoder": latents}


def row(
    name: str,
    reference: dict[str, list[np.ndarray]],
    got: dict[str, list[np.ndarray]] | None,
    tol: Tolerance,
    skipped: str | None = None,
) -> dict[str, Any]:
    if skipped is not None or got is None:
        return {"runtime": name, "status": "skipped", "reason": skipped}
    diffs = [
        np.abs(np.asarray(g, dtype=np.float64).reshape(r.shape) - r)
        for part in reference
        for r, g in zip(reference[part], got[part], strict=True)
    ]
    passed = all(
        tol.passes(r, np.asarray(g, dtype=np.float64).reshape(r.shape))
        for part in reference
        for r, g in zip(reference[part], got[part], strict=True)
    )
    return {
        "runtime": name,
        "status": "pass" if passed else "FAIL",
        "max_abs": float(max(d.max() for d in diffs)),
        "mean_abs": float(np.mean([d.mean() for d in diffs])),
        "tolerance": {"rtol": tol.rtol, "atol": tol.atol},
    }


def run_graphs(runner_for: Any, inputs: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    return {part: [np.asarray(o) for o in runner_for(part)(inputs[part])] for part in ("encoder", "decoder")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "parity.md")
    parser.add_argument(
        "--json", type=Path, default=None, help="results file (default benchmarks/results/parity_matrix.json)"
    )
    args = parser.parse_args()
    manifest = verify_folder(args.model_dir)
    graphs = {
        v: {p: read_verified(manifest, manifest.graph_file(v, p)) for p in ("encoder", "decoder")}
        for v in manifest.variants
    }
    inputs = inputs_for(manifest, args.seed)
    reference = run_graphs(lambda part: Graph(graphs["fp32"][part]), inputs)
    rows = []

    if (args.run_dir / "last.pt").exists():
        from vaeport.export.parity import torch_decoder, torch_encoder
        from vaeport.train.load import load_run

        model, _, _ = load_run(args.run_dir, "last")
        torch_out = {
            "encoder": torch_encoder(model, inputs["encoder"]),
            "decoder": torch_decoder(model, inputs["decoder"]),
        }
        rows.append(row("torch eager (fp32)", reference, torch_out, FP32))
    else:
        rows.append(row("torch eager (fp32)", reference, None, FP32, f"no run folder at {args.run_dir}"))
    for level in ("disabled", "basic", "all"):
        out = run_graphs(
            lambda part, level=level: Graph(graphs["fp32"][part], SessionSettings(device="cpu", optimization=level)),
            inputs,
        )
        rows.append(row(f"onnxruntime-cpu, optimization {level}", reference, out, FP32))
    small = {k: v[:REFERENCE_BATCH] for k, v in inputs.items()}
    small_ref = {p: [o[:REFERENCE_BATCH] for o in outs] for p, outs in reference.items()}
    rows.append(
        row(
            f"onnx.reference (batch {REFERENCE_BATCH})",
            small_ref,
            run_graphs(lambda part: ReferenceGraph(graphs["fp32"][part]), small),
            FP32,
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "inputs.json"
        feed.write_text(
            json.dumps({part: {"shape": list(x.shape), "data": x.ravel().tolist()} for part, x in inputs.items()})
        )
        reason = webtools.missing_node()
        got = None if reason else webtools.node_parity(args.model_dir, feed)
        rows.append(row("onnxruntime-node (cpu)", reference, got, FP32, reason))
        reason = webtools.missing_tools()
        got = None
        if reason is None:
            mounts = {"/web/": webtools.WEB, "/model/": args.model_dir.resolve(), "/inputs.json": feed}
            with webtools.serve(mounts) as base:
                got = webtools.browser(f"{base}/web/parity.html", "runParity('/model/', '/inputs.json')")
        rows.append(row("onnxruntime-web (wasm, headless Chromium)", reference, got, FP32, reason))

    for variant, tol in (("fp16", FP16), ("int8", INT8)):
        if variant in graphs:
            out = run_graphs(lambda part, variant=variant: Graph(graphs[variant][part]), inputs)
            rows.append(row(f"{variant} variant (onnxruntime-cpu)", reference, out, tol))
        else:
            rows.append(row(f"{variant} variant", reference, None, tol, "not exported for this model"))
    if cuda_available():
        sessions = {
            p: create_session(graphs["fp32"][p], SessionSettings(device="cuda")) for p in ("encoder", "decoder")
        }
        out = {p: sessions[p].run(None, {sessions[p].get_inputs()[0].name: inputs[p]}) for p in ("encoder", "decoder")}
        rows.append(row("onnxruntime-cuda (fp32)", reference, out, Tolerance(rtol=1e-3, atol=1e-4)))
    else:
        rows.append(row("onnxruntime-cuda (fp32)", reference, None, FP32, "no CUDA GPU / onnxruntime-gpu here"))

    write_markdown(args.out, args.model_dir, rows)
    payload = {"model_dir": str(args.model_dir), "batch": BATCH, "rows": rows}
    if args.json is None:
        path = write_result("parity_matrix", payload)
    else:
        path = args.json
        path.write_text(json.dumps(payload, indent=2) + "\n")
    for r in rows:
        extra = f"max {r['max_abs']:.2e} mean {r['mean_abs']:.2e}" if "max_abs" in r else r.get("reason", "")
        print(f"{r['status']:>7}  {r['runtime']:<45} {extra}")
    print(f"wrote {args.out} and {path}")
    if any(r["status"] == "FAIL" for r in rows):
        sys.exit(1)


def write_markdown(path: Path, model_dir: Path, rows: list[dict[str, Any]]) -> None:
    lines = [
        "# Cross-runtime parity",
        "",
        f"Model: `{model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir}`. The same "
        f"{BATCH} seeded test images (encoder) and {BATCH} seeded latents z ~ N(0, I) (decoder) go through each "
        "runtime; every output is compared with ONNX Runtime CPU (fp32, all graph optimizations). "
        "Made by `make parity` (`benchmarks/parity_matrix.py`).",
        "",
        "| runtime | status | max abs diff | mean abs diff | tolerance (rtol, atol) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] == "skipped":
            lines.append(f"| {r['runtime']} | skipped: {r['reason']} | | | |")
        else:
            tol = r["tolerance"]
            lines.append(
                f"| {r['runtime']} | {r['status']} | {r['max_abs']:.2e} | {r['mean_abs']:.2e} | "
                f"{tol['rtol']:g}, {tol['atol']:g} |"
            )
    lines += [
        "",
        "fp32 runtimes use rtol 1e-3, atol 1e-4 (as the export gate); fp16 rtol 1e-2, atol 1e-2; int8 is "
        "accepted at export by a mean pixel difference <= 0.01 and is listed here with a loose per-element "
        "bound of 0.1.",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
