"""Cross-runtime parity matrix: the same seeded inputs through every runtime, for every graph role
of each model folder (every shipped model by default, the conditional one included).

Columns: torch eager (when the model's run folder exists), ONNX Runtime CPU at graph optimization
levels disabled / basic / all, onnx.reference, onnxruntime-node, onnxruntime-web (wasm) in headless
Chromium, the fp16 and int8 variants, and ONNX Runtime CUDA when a GPU is present. Each is compared
with ONNX Runtime CPU (all optimizations, fp32): max and mean |difference| and pass/fail against
the tolerance of its kind. Missing tools are marked skipped with the reason, never faked. The
inputs come from export/feeds.py, the function the export gate uses (labels included).

    python benchmarks/parity_matrix.py [--model-dir models/fashion-mnist --run-dir runs/fashion-mnist ...]
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
from common import test_examples, write_result  # noqa: E402

from vaeport.export.feeds import manifest_inputs, seeded_feeds, write_json  # noqa: E402
from vaeport.export.parity import FP32, ReferenceGraph, Tolerance  # noqa: E402
from vaeport.export.variants import FP16  # noqa: E402
from vaeport.runtime.graph import Graph  # noqa: E402
from vaeport.runtime.manifest import read_verified, verify_folder  # noqa: E402
from vaeport.runtime.session import SessionSettings, create_session, cuda_available  # noqa: E402

INT8 = Tolerance(rtol=0.0, atol=0.1)  # int8 is judged by its mean pixel difference at export; here a loose bound
BATCH = 16
REFERENCE_BATCH = 4
Feeds = dict[str, dict[str, np.ndarray]]  # role -> input name -> array


def inputs_for(manifest: Any, seed: int) -> Feeds:
    """BATCH seeded inputs of every role (export/feeds.py) from the model's own test images."""
    training = manifest.training
    classes = len(manifest.classes or ())
    codebook = manifest.shapes.codebook_size if manifest.kind == "vqvae" else 0
    examples = test_examples(
        training["dataset"], None, training.get("image_size"), training["seed"], manifest.latent_dim, classes, codebook
    )
    return seeded_feeds(manifest_inputs(manifest), examples, BATCH, np.random.default_rng(seed))


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


def run_graphs(runner_for: Any, inputs: Feeds) -> dict[str, list[np.ndarray]]:
    """Every role's outputs; `runner_for(role)` takes the role's inputs in the graph's order."""
    return {role: [np.asarray(o) for o in runner_for(role)(*feeds.values())] for role, feeds in inputs.items()}


def matrix(model_dir: Path, run_dir: Path, seed: int) -> list[dict[str, Any]]:
    """The rows of one model folder."""
    manifest = verify_folder(model_dir)
    graphs = {
        v: {role: read_verified(manifest, manifest.graph_file(v, role)) for role in manifest.roles}
        for v in manifest.variants
    }
    inputs = inputs_for(manifest, seed)
    reference = run_graphs(lambda role: Graph(graphs["fp32"][role]), inputs)
    rows = []

    if (run_dir / "last.pt").exists():
        from vaeport.export.parity import torch_outputs
        from vaeport.train.load import load_run

        model, _, _ = load_run(run_dir, "last")
        rows.append(row("torch eager (fp32)", reference, torch_outputs(model, inputs), FP32))
    else:
        rows.append(row("torch eager (fp32)", reference, None, FP32, f"no run folder at {display(run_dir)}"))
    for level in ("disabled", "basic", "all"):
        out = run_graphs(
            lambda role, level=level: Graph(graphs["fp32"][role], SessionSettings(device="cpu", optimization=level)),
            inputs,
        )
        rows.append(row(f"onnxruntime-cpu, optimization {level}", reference, out, FP32))
    small = {role: {k: v[:REFERENCE_BATCH] for k, v in feeds.items()} for role, feeds in inputs.items()}
    small_ref = {p: [o[:REFERENCE_BATCH] for o in outs] for p, outs in reference.items()}
    rows.append(
        row(
            f"onnx.reference (batch {REFERENCE_BATCH})",
            small_ref,
            run_graphs(lambda role: ReferenceGraph(graphs["fp32"][role]), small),
            FP32,
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "inputs.json"
        write_json(inputs, feed)
        reason = webtools.missing_node()
        got = None if reason else webtools.node_parity(model_dir, feed)
        rows.append(row("onnxruntime-node (cpu)", reference, got, FP32, reason))
        reason = webtools.missing_tools()
        got = None
        if reason is None:
            mounts = {"/web/": webtools.WEB, "/model/": model_dir.resolve(), "/inputs.json": feed}
            with webtools.serve(mounts) as base:
                got = webtools.browser(f"{base}/web/parity.html", "runParity('/model/', '/inputs.json')")
        rows.append(row("onnxruntime-web (wasm, headless Chromium)", reference, got, FP32, reason))

    for variant, tol in (("fp16", FP16), ("int8", INT8)):
        if variant in graphs:
            out = run_graphs(lambda role, variant=variant: Graph(graphs[variant][role]), inputs)
            rows.append(row(f"{variant} variant (onnxruntime-cpu)", reference, out, tol))
        else:
            rows.append(row(f"{variant} variant", reference, None, tol, "not exported for this model"))
    if cuda_available():
        sessions = {role: create_session(graphs["fp32"][role], SessionSettings(device="cuda")) for role in inputs}
        out = {role: sessions[role].run(None, feeds) for role, feeds in inputs.items()}
        rows.append(row("onnxruntime-cuda (fp32)", reference, out, Tolerance(rtol=1e-3, atol=1e-4)))
    else:
        rows.append(row("onnxruntime-cuda (fp32)", reference, None, FP32, "no CUDA GPU / onnxruntime-gpu here"))
    return rows


def shipped_models() -> list[Path]:
    return sorted(path.parent for path in (ROOT / "models").glob("*/vae.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-dir", type=Path, action="append", help="a model folder (repeat; default: every one under models/)"
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        action="append",
        help="its run folder, in the same order (default runs/<model name>; absent: no torch column)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "parity.md")
    parser.add_argument(
        "--json", type=Path, default=None, help="results file (default benchmarks/results/parity_matrix.json)"
    )
    args = parser.parse_args()
    model_dirs = args.model_dir or shipped_models()
    run_dirs = args.run_dir or [ROOT / "runs" / m.name for m in model_dirs]
    if len(run_dirs) != len(model_dirs):
        parser.error(f"expected one --run-dir per --model-dir, got {len(run_dirs)} for {len(model_dirs)}")
    sections = {}
    for model_dir, run_dir in zip(model_dirs, run_dirs, strict=True):
        print(f"== {model_dir}", flush=True)
        rows = sections[display(model_dir)] = matrix(model_dir, run_dir, args.seed)
        for r in rows:
            extra = f"max {r['max_abs']:.2e} mean {r['mean_abs']:.2e}" if "max_abs" in r else r.get("reason", "")
            print(f"{r['status']:>7}  {r['runtime']:<45} {extra}")
    write_markdown(args.out, sections)
    payload = {"batch": BATCH, "models": sections}
    if args.json is None:
        path = write_result("parity_matrix", payload)
    else:
        path = args.json
        path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out} and {path}")
    if any(r["status"] == "FAIL" for rows in sections.values() for r in rows):
        sys.exit(1)


def display(model_dir: Path) -> str:
    return str(model_dir.relative_to(ROOT) if model_dir.resolve().is_relative_to(ROOT) else model_dir)


def write_markdown(path: Path, sections: dict[str, list[dict[str, Any]]]) -> None:
    lines = [
        "# Cross-runtime parity",
        "",
        f"For each model folder, the same {BATCH} seeded inputs of every graph role (real test images, their "
        "labels for a conditional model, latents z ~ N(0, I): `export/feeds.py`, as the export gate draws them) "
        "go through each runtime; every output is compared with ONNX Runtime CPU (fp32, all graph "
        "optimizations). Made by `make parity` (`benchmarks/parity_matrix.py`).",
    ]
    for model_dir, rows in sections.items():
        header = "| runtime | status | max abs diff | mean abs diff | tolerance (rtol, atol) |"
        lines += ["", f"## `{model_dir}`", "", header, "|---|---|---|---|---|"]
        lines += table_rows(rows)
    lines += [
        "",
        "fp32 runtimes use rtol 1e-3, atol 1e-4 (as the export gate); fp16 rtol 1e-2, atol 1e-2; int8 is "
        "accepted at export by a mean pixel difference <= 0.01 and is listed here with a loose per-element "
        "bound of 0.1.",
        "",
    ]
    path.write_text("\n".join(lines))


def table_rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        if r["status"] == "skipped":
            lines.append(f"| {r['runtime']} | skipped: {r['reason']} | | | |")
        else:
            tol = r["tolerance"]
            lines.append(
                f"| {r['runtime']} | {r['status']} | {r['max_abs']:.2e} | {r['mean_abs']:.2e} | "
                f"{tol['rtol']:g}, {tol['atol']:g} |"
            )
    return lines


if __name__ == "__main__":
    main()
