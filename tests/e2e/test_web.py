"""Cross-runtime parity (a small matrix) and the browser demo in headless Chromium."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from vaeport.export.pipeline import ExportOptions, export_run

from ..helpers import make_run

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "web"))
import webtools  # noqa: E402

SHIPPED = ROOT / "models" / "fashion-mnist"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    run = make_run(root / "run", arch="conv", hidden=(8, 16), latent_dim=4, epochs=1)
    export_run(run, root / "model", ExportOptions(), log=lambda _: None)
    return root / "model"


def python_outputs(model_dir, part, x):
    manifest = json.loads((model_dir / "vae.json").read_text())
    session = ort.InferenceSession(
        str(model_dir / manifest["graphs"]["fp32"][part]), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: x})


def assert_matches_python(model_dir, got, x, z):
    """Another runtime's flat outputs equal Python onnxruntime's within the fp32 gate's tolerance."""
    for part, data in (("encoder", x), ("decoder", z)):
        for want, out in zip(python_outputs(model_dir, part, data), got[part], strict=True):
            np.testing.assert_allclose(np.asarray(out).reshape(want.shape), want, rtol=1e-3, atol=1e-4)


def write_inputs(path, model_dir):
    manifest = json.loads((model_dir / "vae.json").read_text())
    image = manifest["image"]
    rng = np.random.default_rng(0)
    x = rng.random((3, image["channels"], image["height"], image["width"]), dtype=np.float32)
    z = rng.standard_normal((5, manifest["model"]["latent_dim"]), dtype=np.float32)
    path.write_text(
        json.dumps(
            {
                "encoder": {"shape": list(x.shape), "data": x.ravel().tolist()},
                "decoder": {"shape": list(z.shape), "data": z.ravel().tolist()},
            }
        )
    )
    return x, z


@pytest.mark.slow
def test_parity_matrix_on_a_small_model(small_model, tmp_path):
    """The whole matrix (a smaller model than the shipped one): every column passes or says why it skipped."""
    import subprocess

    run_dir = small_model.parent / "run"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "parity_matrix.py"),
            "--model-dir",
            str(small_model),
            "--run-dir",
            str(run_dir),
            "--out",
            str(tmp_path / "parity.md"),
            "--json",
            str(tmp_path / "parity.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    rows = {r["runtime"]: r for r in json.loads((tmp_path / "parity.json").read_text())["rows"]}
    for name in ("torch eager (fp32)", "onnxruntime-cpu, optimization disabled", "onnx.reference (batch 4)"):
        assert rows[name]["status"] == "pass", name
    for row in rows.values():
        assert row["status"] == "pass" or (row["status"] == "skipped" and row["reason"])
    assert "| runtime | status |" in (tmp_path / "parity.md").read_text()


@pytest.mark.skipif(webtools.missing_node() is not None, reason=str(webtools.missing_node()))
def test_onnxruntime_node_matches_python(small_model, tmp_path):
    x, z = write_inputs(tmp_path / "inputs.json", small_model)
    got = webtools.node_parity(small_model, tmp_path / "inputs.json")
    assert_matches_python(small_model, got, x, z)


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_onnxruntime_web_matches_python(small_model, tmp_path):
    x, z = write_inputs(tmp_path / "inputs.json", small_model)
    mounts = {"/web/": webtools.WEB, "/model/": small_model, "/inputs.json": tmp_path / "inputs.json"}
    with webtools.serve(mounts) as base:
        got = webtools.browser(f"{base}/web/parity.html", "runParity('/model/', '/inputs.json')")
    assert_matches_python(small_model, got, x, z)


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_demo_page_draws_what_python_decodes(small_model, tmp_path):
    """Feed the page a fixed latent, read the canvas back, compare with Python onnxruntime; screenshot."""
    model = SHIPPED if (SHIPPED / "vae.json").exists() else small_model
    manifest = json.loads((model / "vae.json").read_text())
    z = np.random.default_rng(7).standard_normal((2, manifest["model"]["latent_dim"])).astype(np.float32)
    shot = tmp_path / "web-demo.png"
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        rgba = webtools.browser(f"{base}/web/?model=/model/", f"vaeportProbe({json.dumps(z.tolist())})", shot)
    image = manifest["image"]
    h, w, c = image["height"], image["width"], image["channels"]
    pixels = np.asarray(rgba, dtype=np.int32).reshape(h, 2 * w, 4)
    expected = np.rint(python_outputs(model, "decoder", z)[0] * 255).astype(np.int32)  # (2, C, H, W)
    for i in range(2):
        tile = pixels[:, i * w : (i + 1) * w, :3]
        want = np.repeat(expected[i].transpose(1, 2, 0), 3 // c, axis=2)
        assert np.abs(tile - want).max() <= 1
    assert shot.stat().st_size > 10_000
    if model == SHIPPED:  # the picture the README shows
        target = ROOT / "docs" / "web-demo.png"
        tmp = target.with_suffix(".png.tmp")
        tmp.write_bytes(shot.read_bytes())
        tmp.replace(target)
