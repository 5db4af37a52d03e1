"""Compatibility matrix: the model folder's graphs, for each export target, in the runtimes apps pin,
each compared with torch eager on the same seeded inputs.

Rows: target (portable, legacy) x variant (fp32, fp16) x graph role (each of the family's). Columns: torch
eager (the reference), ONNX Runtime of this environment, onnx.reference, then runtimes each in its
own venv built from the package registry and cached under .cache/vaeport/venvs (onnxruntime at the
oldest version with wheels for this Python and at the newest, OpenVINO, OpenCV DNN, tract,
onnx2torch, which converts the graph back to torch), then onnxruntime-node and onnxruntime-web in
headless Chromium (fp32). A column that cannot be installed is skipped with its reason; a runtime
that cannot run a graph shows the error, never a number. Sections: the shipped model's run folder
when present, a synthetic conv VAE (Resize, Shape, DepthToSpace), a synthetic conditional VAE
(the int64 label input and its Gather), a flow prior's graphs and a small class-conditional VQ-VAE
(four roles; its fp16 variant is refused by the gate, so it has fp32 rows only); inputs from
export/feeds.py, as the export gate draws them.

    python benchmarks/compatibility.py [--run-dir runs/fashion-mnist] [--python-only]
    python benchmarks/compatibility.py --no-conv --no-flow --no-conditional --run-dir none --keep-recorded
    make parity
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "web"))
import webtools  # noqa: E402
from common import test_examples, write_result  # noqa: E402

from vaeport.export import export  # noqa: E402
from vaeport.export.feeds import seeded_feeds, write_json  # noqa: E402
from vaeport.export.parity import FP32, ReferenceGraph, Tolerance, role_inputs, torch_outputs  # noqa: E402
from vaeport.export.targets import TARGETS  # noqa: E402
from vaeport.export.variants import FP16  # noqa: E402
from vaeport.runtime.atomic import atomic_write_text  # noqa: E402
from vaeport.runtime.graph import Graph  # noqa: E402
from vaeport.runtime.manifest import read_manifest  # noqa: E402
from vaeport.train.load import load_run  # noqa: E402

BATCH = 8
VENVS = Path(os.environ.get("VAEPORT_VENV_CACHE", ROOT / ".cache" / "vaeport" / "venvs"))
CHILD = HERE / "compat_child.py"
OLDEST_ONNXRUNTIME = "1.15.0"  # the oldest onnxruntime with wheels for Python 3.10 and 3.11
# column -> (runner in compat_child.py, pip requirements, requirements installed without their dependencies)
VENV_COLUMNS: dict[str, tuple[str, list[str], list[str]]] = {
    f"onnxruntime {OLDEST_ONNXRUNTIME}": ("onnxruntime", [f"onnxruntime=={OLDEST_ONNXRUNTIME}", "numpy<2"], []),
    "onnxruntime (newest)": ("onnxruntime", ["onnxruntime", "numpy"], []),
    "OpenVINO (f32 precision hint)": ("openvino", ["openvino", "numpy"], []),
    "OpenCV DNN": ("opencv", ["opencv-python-headless", "numpy"], []),
    "tract": ("tract", ["tract", "numpy"], []),
    # torchvision (an onnx2torch dependency) would replace the pinned CPU torch with a CUDA build
    "onnx2torch (to torch)": ("onnx2torch", ["torch==2.13.0", "onnx", "numpy"], ["onnx2torch"]),
    # the runtime package itself at pyproject.toml's onnxruntime floor (this checkout's wheel goes in each run)
    f"vaeport runtime on onnxruntime {OLDEST_ONNXRUNTIME}": (
        "vaeport",
        [f"onnxruntime=={OLDEST_ONNXRUNTIME}", "numpy<2", "click"],
        [],
    ),
}
TOLERANCES = {"fp32": FP32, "fp16": FP16}


def venv_for(name: str, requirements: list[str], no_deps: list[str]) -> tuple[Path | None, str | None]:
    """(python of a venv with `requirements`, None) or (None, why it could not be made). The venv
    is reused while its requirements are unchanged."""
    key = hashlib.sha256(json.dumps([sys.version, requirements, no_deps]).encode()).hexdigest()[:12]
    folder = VENVS / f"{name.split()[0].lower()}-{key}"
    python = folder / "bin" / "python"
    marker = folder / ".complete"
    if marker.exists():
        return python, None
    folder.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(folder)],
        [str(python), "-m", "pip", "install", "-q", *requirements],
    ]
    if no_deps:
        steps.append([str(python), "-m", "pip", "install", "-q", "--no-deps", *no_deps])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
            return (
                None,
                f"could not install {' '.join(requirements + no_deps)}: {lines[-1] if lines else done.returncode}",
            )
    marker.write_text(json.dumps(requirements + no_deps) + "\n")
    return python, None


@functools.cache
def checkout_wheel() -> Path:
    """This checkout's wheel, built once per run."""
    wheels = VENVS.parent / "wheel"
    for old in wheels.glob("vaeport-*.whl"):
        old.unlink()
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels), str(ROOT)], capture_output=True, text=True
    )
    if built.returncode != 0:
        raise RuntimeError(f"could not build the vaeport wheel: {(built.stderr.strip().splitlines() or ['?'])[-1]}")
    return next(wheels.glob("vaeport-*.whl"))


def install_checkout(python: Path) -> str | None:
    """Put this checkout's wheel into the venv of `python` without dependencies (the venv pins
    them); returns why that failed, or None."""
    try:
        wheel = checkout_wheel()
    except RuntimeError as exc:
        return str(exc)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    return None if done.returncode == 0 else f"could not install {wheel.name}: {done.stderr.strip()[-300:]}"


def seeded_inputs(run_dir: Path, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """BATCH seeded inputs of every role of the run's model (export/feeds.py)."""
    model, cfg, _ = load_run(run_dir, "last")
    classes = model.config.num_classes
    codebook = cfg.codebook_size if cfg.kind == "vqvae" else 0
    examples = test_examples(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.seed, cfg.latent_dim, classes, codebook)
    return seeded_feeds(role_inputs(model), examples, BATCH, np.random.default_rng(seed))


def compare(reference: list[np.ndarray], got: list[np.ndarray], tol: Tolerance) -> dict[str, Any]:
    if len(got) != len(reference) or any(g.shape != r.shape for g, r in zip(got, reference, strict=False)):
        shapes = [list(g.shape) for g in got]
        return {
            "status": "error",
            "reason": f"outputs of shapes {shapes}, expected {[list(r.shape) for r in reference]}",
        }
    diff = max(float(np.abs(g.astype(np.float64) - r).max()) for g, r in zip(got, reference, strict=True))
    ok = all(tol.passes(r, g) and np.isfinite(g).all() for g, r in zip(got, reference, strict=True))
    return {"status": "pass" if ok else "FAIL", "max_abs": diff}


def conv_run(root: Path) -> Path:
    """A 1-epoch conv VAE on 2,000 synthetic 28x28 images: its graphs hold the ops of vaeport's
    conv decoders (Resize for nearest upsampling, Shape, DepthToSpace), which the MLP's lack.
    The weights do not matter here, the ops do."""
    from vaeport.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    images = ((rng.random((2000, 28, 28)) < 0.3) * 255).astype(np.uint8)
    np.save(root / "synthetic.npy", images)
    config = TrainConfig(dataset=f"npy:{root / 'synthetic.npy'}", arch="conv", hidden=(8, 16), latent_dim=8, epochs=1)
    return fit(config, root / "conv-run", quiet=True).path


def conditional_run(root: Path) -> Path:
    """A 1-epoch conditional MLP VAE on 2,000 synthetic labelled 28x28 images: its graphs take the
    int64 label input y (a Gather per layer), which unconditional graphs lack."""
    from vaeport.train import TrainConfig, fit

    rng = np.random.default_rng(1)
    np.save(root / "labelled.npy", ((rng.random((2000, 28, 28)) < 0.3) * 255).astype(np.uint8))
    np.save(root / "labelled.labels.npy", rng.integers(0, 10, 2000))
    config = TrainConfig(
        dataset=f"npy:{root / 'labelled.npy'}", hidden=(64,), latent_dim=8, epochs=1, conditional=True
    )
    return fit(config, root / "conditional-run", quiet=True).path


def flow_run(root: Path) -> Path:
    """A 1-epoch MLP VAE with a flow prior on 2,000 synthetic 28x28 images: its prior graphs
    (prior_sample, prior_log_prob, prior_inverse: Tanh, Exp, the couplings' Gemm) beside the
    encoder and decoder."""
    from vaeport.train import TrainConfig, fit

    rng = np.random.default_rng(2)
    np.save(root / "flow.npy", ((rng.random((2000, 28, 28)) < 0.3) * 255).astype(np.uint8))
    config = TrainConfig(
        dataset=f"npy:{root / 'flow.npy'}", hidden=(64,), latent_dim=8, epochs=1, prior="flow", flow_layers=4,
        flow_hidden=32,
    )  # fmt: skip
    return fit(config, root / "flow-run", quiet=True).path


def vq_run(root: Path) -> Path:
    """A small class-conditional VQ-VAE (1 + 1 epochs on 2,000 synthetic labelled 28x28 images):
    the quantizer's MatMul and ArgMin, the decoder's GatherND, the prior's LayerNormalization,
    Erf, Softmax and masks, and prior_step's int64 token/position inputs and key/value buffers."""
    from vaeport.train import TrainConfig, fit

    rng = np.random.default_rng(3)
    np.save(root / "vq.npy", ((rng.random((2000, 28, 28)) < 0.3) * 255).astype(np.uint8))
    np.save(root / "vq.labels.npy", rng.integers(0, 10, 2000))
    config = TrainConfig(
        dataset=f"npy:{root / 'vq.npy'}", kind="vqvae", conditional=True, hidden=(16, 32), latent_dim=8,
        codebook_size=32, epochs=1, prior_epochs=1, prior_width=32, prior_layers=2, prior_heads=2,
    )  # fmt: skip
    return fit(config, root / "vq-run", quiet=True).path


def run_child(python: Path, kind: str, job: dict, tmp_path: Path) -> tuple[dict | None, Any]:
    """(report, outputs by "<id>/<index>") of compat_child.py on the job's rows. A runtime that
    crashes the process (a segfault in native code) is run again a row at a time, so only the
    rows that crash it are lost ("cannot run", with the exit code); (None, reason) when not one
    row can run."""

    def attempt(rows: list[dict]) -> tuple[subprocess.CompletedProcess, Path]:
        name = f"job-{rows[0]['id']}" if len(rows) == 1 else "job"
        (tmp_path / f"{name}.json").write_text(json.dumps({"rows": rows}))
        out = tmp_path / f"{name}.npz"
        done = subprocess.run(
            [str(python), str(CHILD), kind, str(tmp_path / f"{name}.json"), str(out)],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        return done, out

    done, out = attempt(job["rows"])
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1]), dict(np.load(out))
    report: dict[str, Any] = {"version": None, "status": {}}
    outputs: dict[str, np.ndarray] = {}
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
    for row in job["rows"]:
        single, path = attempt([row])
        if single.returncode != 0:
            report["status"][row["id"]] = f"the runtime crashed (exit code {single.returncode}): {reason}"
            continue
        part = json.loads(single.stdout.strip().splitlines()[-1])
        report["version"] = part["version"]
        report["status"].update(part["status"])
        outputs.update(dict(np.load(path)))
    if report["version"] is None:
        return None, reason
    return report, outputs


def matrix_for(run_dir: Path, seed: int, with_web: bool, tmp_path: Path) -> tuple[list[dict], dict[str, str]]:
    """The rows of one run folder's export, every column filled; and the versions of the venv runtimes."""
    model, _, _ = load_run(run_dir, "last")
    inputs = seeded_inputs(run_dir, seed)
    reference = torch_outputs(model, inputs)
    folders = {name: export(run_dir, tmp_path / name, target=name, fp16=True, checkpoint="last") for name in TARGETS}
    rows, files = [], {}
    for target, folder in folders.items():
        manifest = read_manifest(folder)
        for variant in [v for v in ("fp32", "fp16") if v in manifest.data["graphs"]]:  # a variant the gate left out
            for role in manifest.roles:
                row_id = f"{target}-{variant}-{role}"
                files[row_id] = folder / manifest.graph_file(variant, role)
                rows.append({"id": row_id, "target": target, "opset": manifest.opset, "variant": variant,
                             "graph": role, "results": {}})  # fmt: skip
    npy = {role: {name: tmp_path / f"{role}-{name}.npy" for name in feeds} for role, feeds in inputs.items()}
    for role, feeds in inputs.items():
        for name, array in feeds.items():
            np.save(npy[role][name], array)
    for row in rows:
        tol, ref, feeds = TOLERANCES[row["variant"]], reference[row["graph"]], inputs[row["graph"]]
        graph = Graph(files[row["id"]].read_bytes())
        row["results"]["onnxruntime (this environment)"] = compare(ref, graph.run(feeds), tol)
        small = ReferenceGraph(files[row["id"]].read_bytes())(*(a[:2] for a in feeds.values()))  # a slow interpreter
        row["results"]["onnx.reference (batch 2)"] = compare([r[:2] for r in ref], small, tol)
    versions = {}
    portable = read_manifest(folders["portable"])
    outputs_of = {role: [name for name, _ in portable.expected_io(role)[1]] for role in inputs}
    for column, (kind, requirements, no_deps) in VENV_COLUMNS.items():
        print(f"== {run_dir.name}: {column}", flush=True)
        python, reason = venv_for(column, requirements, no_deps)
        if python is not None and kind == "vaeport":
            reason = install_checkout(python)
            python = None if reason else python
        if python is None:
            for row in rows:
                row["results"][column] = {"status": "skipped", "reason": reason}
            continue
        job = {
            "rows": [
                {"id": r["id"], "graph": str(files[r["id"]]), "outputs": outputs_of[r["graph"]],
                 "inputs": {name: str(path) for name, path in npy[r["graph"]].items()},
                 "folder": str(folders[r["target"]]), "variant": r["variant"], "part": r["graph"]}
                for r in rows
            ]
        }  # fmt: skip
        report, outputs = run_child(python, kind, job, tmp_path)
        if report is None:  # the runtime could not even start: the same reason on every row
            for row in rows:
                row["results"][column] = {"status": "error", "reason": outputs}
            continue
        versions[column] = report["version"]
        for row in rows:
            status = report["status"][row["id"]]
            if status != "ok":
                row["results"][column] = {"status": "cannot run", "reason": status}
                continue
            got = [outputs[f"{row['id']}/{i}"] for i in range(len(reference[row["graph"]]))]
            row["results"][column] = compare(reference[row["graph"]], got, TOLERANCES[row["variant"]])
    if with_web:
        web_columns(rows, folders, inputs, reference, tmp_path)
    return rows, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "fashion-mnist",
                        help="a run folder whose export is checked (skipped when absent)")  # fmt: skip
    parser.add_argument("--no-conv", action="store_true", help="skip the synthetic conv model")
    parser.add_argument("--no-conditional", action="store_true", help="skip the synthetic conditional model")
    parser.add_argument("--no-flow", action="store_true", help="skip the synthetic flow-prior model")
    parser.add_argument("--no-vq", action="store_true", help="skip the synthetic VQ-VAE")
    parser.add_argument("--keep-recorded", action="store_true",
                        help="keep the sections of the last recorded result that this run skips")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--python-only", action="store_true", help="skip the Node and Chromium columns")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "compatibility.md")
    parser.add_argument("--json", type=Path, default=None, help="results file (default benchmarks/results/)")
    args = parser.parse_args()
    started = time.perf_counter()
    sections, versions = {}, {}
    with tempfile.TemporaryDirectory(prefix="vaeport-compat-") as tmp:
        tmp_path = Path(tmp)
        runs = {}
        if (args.run_dir / "last.pt").exists():
            runs[f"`{args.run_dir.name}` (a run folder of the shipped recipe, MLP)"] = args.run_dir
        else:
            print(f"no run folder at {args.run_dir}: its section is skipped", flush=True)
        if not args.no_conv:
            (tmp_path / "conv").mkdir()
            runs["a conv VAE (1 epoch on synthetic 28x28 images; Resize, Shape, DepthToSpace)"] = conv_run(
                tmp_path / "conv"
            )
        if not args.no_flow:
            (tmp_path / "flow").mkdir()
            runs["a VAE with a flow prior (1 epoch on synthetic 28x28 images; prior_sample, prior_log_prob, "
                 "prior_inverse)"] = flow_run(tmp_path / "flow")  # fmt: skip
        if not args.no_conditional:
            (tmp_path / "conditional").mkdir()
            runs["a conditional VAE (1 epoch on synthetic labelled 28x28 images; the int64 label y, Gather)"] = (
                conditional_run(tmp_path / "conditional")
            )
        if not args.no_vq:
            (tmp_path / "vq").mkdir()
            title = (
                "a class-conditional VQ-VAE (1 + 1 epochs on synthetic labelled 28x28 images; int64 codes, ArgMin, "
                "GatherND, LayerNormalization, the prior_step's key/value buffers)"
            )
            runs[title] = vq_run(tmp_path / "vq")
        for title, run_dir in runs.items():
            work = tmp_path / f"work-{len(sections)}"
            work.mkdir()
            sections[title], found = matrix_for(run_dir, args.seed, not args.python_only, work)
            versions.update(found)
    recorded = args.json or HERE / "results" / "compatibility.json"
    if args.keep_recorded and recorded.is_file():
        before = json.loads(recorded.read_text())
        sections = {**{t: rows for t, rows in before["sections"].items() if t not in sections}, **sections}
        versions = {**before["versions"], **versions}
    write_markdown(args.out, sections, versions)
    payload = {"batch": BATCH, "versions": versions, "sections": sections, "seconds": time.perf_counter() - started}
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        path = args.json
    else:
        path = write_result("compatibility", payload)
    print(f"wrote {args.out} and {path}")
    results = [r for rows in sections.values() for row in rows for r in row["results"].values()]
    if any(r["status"] in ("FAIL", "error") for r in results):
        sys.exit(1)


def web_columns(rows: list[dict], folders: dict[str, Path], inputs: dict, reference: dict, tmp: Path) -> None:
    """onnxruntime-node and onnxruntime-web (headless Chromium) on each target's fp32 graphs."""
    feed = tmp / "inputs.json"
    write_json(inputs, feed)
    for column, reason_of in (("onnxruntime-node", webtools.missing_node), ("onnxruntime-web", webtools.missing_tools)):
        for target, folder in folders.items():
            reason = reason_of()
            got = None
            if reason is None:
                try:
                    if column == "onnxruntime-node":
                        got = webtools.node_parity(folder, feed)
                    else:
                        mounts = {"/web/": webtools.WEB, "/model/": folder.resolve(), "/inputs.json": feed}
                        with webtools.serve(mounts) as base:
                            got = webtools.browser(f"{base}/web/parity.html", "runParity('/model/', '/inputs.json')")
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    reason = str(exc).splitlines()[0][:300]
            for row in rows:
                if row["target"] != target:
                    continue
                if row["variant"] != "fp32":
                    row["results"][column] = {"status": "not run", "reason": "the web tools load fp32 graphs"}
                elif got is None:
                    row["results"][column] = {"status": "skipped", "reason": reason}
                else:
                    ref = reference[row["graph"]]
                    flat = [
                        np.asarray(o, dtype=np.float32).reshape(r.shape)
                        for o, r in zip(got[row["graph"]], ref, strict=True)
                    ]
                    row["results"][column] = compare(ref, flat, FP32)


def write_markdown(path: Path, sections: dict[str, list[dict]], versions: dict[str, str]) -> None:
    def cell(result: dict) -> str:
        if "max_abs" in result:
            return f"{result['max_abs']:.1e}" + ("" if result["status"] == "pass" else " FAIL")
        return f"{result['status']}: {result.get('reason', '')}".replace("|", "/")

    lines = [
        "# Compatibility matrix",
        "",
        "Each model's graphs, exported for each target (`vae-export --target`, docs/model-format.md), run in each "
        f"runtime on the same {BATCH} seeded inputs of every graph role (test images, their labels, latents, a "
        "prior's noise: `export/feeds.py`, as the export gate draws them). A cell is the largest "
        "|difference| from torch eager over all outputs (fp32 passes at rtol 1e-3, atol 1e-4, as the export gate; "
        "fp16 at 1e-2), or why the runtime could not run the graph. Made by `make parity` "
        "(`benchmarks/compatibility.py`); every runtime after the first two columns runs in its own venv built "
        "from PyPI and cached under .cache/vaeport/venvs (delete it to pick up newer releases).",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()) + ".",
    ]
    for title, rows in sections.items():
        columns = list(rows[0]["results"])
        lines += [
            "",
            f"## {title}",
            "",
            "| target (opset) | variant | graph | " + " | ".join(columns) + " |",
            "|---|---|---|" + "---|" * len(columns),
        ]
        for row in rows:
            cells = " | ".join(cell(row["results"][c]) for c in columns)
            lines.append(f"| {row['target']} ({row['opset']}) | {row['variant']} | {row['graph']} | {cells} |")
    lines.append("")
    atomic_write_text(path, "\n".join(lines))


if __name__ == "__main__":
    main()
