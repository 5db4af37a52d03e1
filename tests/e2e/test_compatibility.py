"""The compatibility matrix's Python columns on a small conv model, each runtime in its own venv
built from the package registry (cached under .cache/vaeport/venvs, so a second run is fast).

It backs two promises: every graph of both targets runs in onnxruntime 1.15.0 (the manifest's
`oldest_onnxruntime_tested`, pyproject.toml's floor), and vaeport's own runtime works on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vaeport.export.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_python_columns_of_the_compatibility_matrix(tmp_path):
    result = tmp_path / "compatibility.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compatibility.py"), "--python-only",
         "--run-dir", str(tmp_path / "no-run"), "--out", str(tmp_path / "compatibility.md"), "--json", str(result)],
        capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sections = json.loads(result.read_text())["sections"]
    assert len(sections) == 4  # the synthetic conv VAE, conditional VAE, flow-prior VAE and VQ-VAE
    conditional = next(rows for title, rows in sections.items() if "conditional VAE" in title)
    flow = next(rows for title, rows in sections.items() if "flow prior" in title)
    vq = next(rows for title, rows in sections.items() if "VQ-VAE" in title)
    conv = next(rows for title, rows in sections.items() if "conv VAE" in title)
    assert {row["graph"] for row in conditional} == {"encoder", "decoder"}
    assert {row["graph"] for row in flow} == {"encoder", "decoder", "prior_sample", "prior_log_prob", "prior_inverse"}
    assert {row["graph"] for row in vq} == {"encoder", "decoder", "prior", "prior_step"}
    oldest = "onnxruntime 1.15.0"
    for rows in sections.values():
        variants = 1 if rows is vq else 2  # the gate refuses a VQ-VAE's fp16 variant: fp32 rows only
        graphs = len({r["graph"] for r in rows})
        assert {row["target"] for row in rows} == set(TARGETS) and len(rows) == 2 * variants * graphs
        check_rows(rows, oldest, conv=rows is conv)
    assert (tmp_path / "compatibility.md").read_text().count("| portable (18) |") == 8 + 10 + 4


def check_rows(rows, oldest, conv):
    for row in rows:
        results = row["results"]
        if results[oldest]["status"] == "skipped":
            pytest.skip(f"the package registry is out of reach: {results[oldest]['reason']}")
        for column in (oldest, f"vaeport runtime on {oldest}", "onnxruntime (newest)", "onnx.reference (batch 2)"):
            assert results[column]["status"] == "pass", (row["id"], column, results[column])
        assert TARGETS[row["target"]].oldest_onnxruntime_tested == "1.15.0"
        if conv and row["variant"] == "fp32":  # OpenVINO and OpenCV DNN run every fp32 graph of the conv VAE
            for column in ("OpenVINO (f32 precision hint)", "OpenCV DNN"):
                assert results[column]["status"] in ("pass", "skipped"), (row["id"], column, results[column])
        if row["target"] == "legacy":  # the point of the legacy target: converters take it
            assert results["onnx2torch (to torch)"]["status"] in ("pass", "skipped"), row["id"]
