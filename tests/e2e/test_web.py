"""Cross-runtime parity (a small matrix) and the browser demo in headless Chromium."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from vaeport.export.feeds import Examples, manifest_inputs, seeded_feeds, write_json
from vaeport.export.pipeline import ExportOptions, export_run
from vaeport.runtime.graph import Graph
from vaeport.runtime.manifest import read_manifest

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


@pytest.fixture(scope="module")
def small_cvae(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-cvae")
    run = make_run(root / "run", arch="mlp", hidden=(16,), latent_dim=4, epochs=10, conditional=True)
    export_run(run, root / "model", ExportOptions(), log=lambda _: None)
    return root / "model"


def python_outputs(model_dir, part, x, labels=None):
    manifest = json.loads((model_dir / "vae.json").read_text())
    session = ort.InferenceSession(
        str(model_dir / manifest["graphs"]["fp32"][part]), providers=["CPUExecutionProvider"]
    )
    feeds = {session.get_inputs()[0].name: x}
    if labels is not None:
        feeds["y"] = np.asarray(labels, dtype=np.int64)
    return session.run(None, feeds)


def assert_matches_python(model_dir, got, feeds):
    """Another runtime's flat outputs equal Python onnxruntime's for every role within the fp32
    gate's tolerance."""
    manifest = read_manifest(model_dir)
    assert set(feeds) == set(manifest.roles)
    for role, inputs in feeds.items():
        graph = Graph((model_dir / manifest.graph_file("fp32", role)).read_bytes())
        for want, out in zip(graph.run(inputs), got[role], strict=True):
            np.testing.assert_allclose(np.asarray(out).reshape(want.shape), want, rtol=1e-3, atol=1e-4)


def write_inputs(path, model_dir):
    """The seeded inputs of every role (export/feeds.py: labels too for a conditional model), as the
    parity matrix writes them; returns them."""
    manifest = read_manifest(model_dir)
    rng = np.random.default_rng(0)
    images = rng.random((3, *manifest.image_shape), dtype=np.float32)
    classes = len(manifest.classes or ())
    labels = rng.integers(0, classes, 3) if classes else None
    codebook = manifest.shapes.codebook_size if manifest.kind == "vqvae" else 0
    examples = Examples(images, manifest.latent_dim, labels, classes, codebook)
    feeds = seeded_feeds(manifest_inputs(manifest), examples, 5, rng)
    write_json(feeds, path)
    return feeds


@pytest.mark.slow
def test_parity_matrix_on_a_small_model(small_model, tmp_path):
    """The whole matrix (a smaller model than the shipped one): every column passes or says why it skipped."""

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
    (rows,) = json.loads((tmp_path / "parity.json").read_text())["models"].values()
    rows = {r["runtime"]: r for r in rows}
    for name in ("torch eager (fp32)", "onnxruntime-cpu, optimization disabled", "onnx.reference (batch 4)"):
        assert rows[name]["status"] == "pass", name
    for row in rows.values():
        assert row["status"] == "pass" or (row["status"] == "skipped" and row["reason"])
    assert "| runtime | status |" in (tmp_path / "parity.md").read_text()


@pytest.mark.skipif(webtools.missing_node() is not None, reason=str(webtools.missing_node()))
@pytest.mark.parametrize("which", ["small_model", "small_cvae", "vq_model"])
def test_onnxruntime_node_matches_python(which, request, tmp_path):
    model = request.getfixturevalue(which)
    feeds = write_inputs(tmp_path / "inputs.json", model)
    got = webtools.node_parity(model, tmp_path / "inputs.json")
    assert_matches_python(model, got, feeds)


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
@pytest.mark.parametrize("which", ["small_model", "small_cvae", "vq_model"])
def test_onnxruntime_web_matches_python(which, request, tmp_path):
    model = request.getfixturevalue(which)
    feeds = write_inputs(tmp_path / "inputs.json", model)
    mounts = {"/web/": webtools.WEB, "/model/": model, "/inputs.json": tmp_path / "inputs.json"}
    with webtools.serve(mounts) as base:
        got = webtools.browser(f"{base}/web/parity.html", "runParity('/model/', '/inputs.json')")
    assert_matches_python(model, got, feeds)


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


CVAE_SHIPPED = ROOT / "models" / "fashion-mnist-cvae"


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_demo_page_draws_a_labelled_decode_as_python(small_cvae, tmp_path):
    """A conditional model: the page has a class picker; after picking class 2 the probe draws the
    same latents as Python decodes them with label 2, and explicit labels give Python's too."""
    model = CVAE_SHIPPED if (CVAE_SHIPPED / "vae.json").exists() else small_cvae
    manifest = json.loads((model / "vae.json").read_text())
    z = np.random.default_rng(3).standard_normal((3, manifest["model"]["latent_dim"])).astype(np.float32)
    shot = tmp_path / "web-cvae.png"
    probe = f"vaeportPick(2).then(() => Promise.all([vaeportProbe({json.dumps(z.tolist())}), "
    probe += f"vaeportProbe({json.dumps(z.tolist())}, [0, 1, 2]), "
    probe += "document.querySelectorAll('#label option').length]))"
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        picked, explicit, options = webtools.browser(f"{base}/web/?model=/model/", probe, shot)
    assert options == len(manifest["classes"])
    image = manifest["image"]
    h, w = image["height"], image["width"]
    for rgba, labels in ((picked, [2, 2, 2]), (explicit, [0, 1, 2])):
        pixels = np.asarray(rgba, dtype=np.int32).reshape(h, 3 * w, 4)
        expected = np.rint(python_outputs(model, "decoder", z, labels)[0] * 255).astype(np.int32)
        for i in range(3):
            assert np.abs(pixels[:, i * w : (i + 1) * w, 0] - expected[i, 0]).max() <= 1
    different = np.rint(python_outputs(model, "decoder", z, [5, 5, 5])[0] * 255)
    assert np.abs(different - np.rint(python_outputs(model, "decoder", z, [2, 2, 2])[0] * 255)).max() > 10


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"prior": "vamp"}, "this demo cannot sample the vamp prior (it samples normal, flow)"),
        ({"kind": "pixelvae"}, "this demo cannot run model.kind pixelvae (it runs vae, ae, vqvae)"),
    ],
)
def test_demo_page_refuses_a_folder_it_cannot_run(small_model, tmp_path, edit, message):
    """A family or a prior the page does not know is refused with one visible line, never drawn
    from N(0, I) behind the model's back."""

    folder = tmp_path / "model"
    shutil.copytree(small_model, folder)
    manifest = json.loads((folder / "vae.json").read_text())
    manifest["model"].update(edit)
    (folder / "vae.json").write_text(json.dumps(manifest))
    with webtools.serve({"/web/": webtools.WEB, "/model/": folder}) as base, pytest.raises(RuntimeError) as caught:
        webtools.browser(f"{base}/web/?model=/model/")
    assert message in str(caught.value)


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_demo_page_samples_through_a_learned_prior_as_python(tmp_path):
    """A flow-prior model: the page runs prior_sample on its noise before the decoder, and gives
    the latents Python's runtime gives for the same noise."""
    from vaeport.export import export
    from vaeport.runtime import VAE

    run = make_run(tmp_path / "run", hidden=(16,), latent_dim=4, epochs=2, prior="flow", flow_layers=2, flow_hidden=8)
    model = export(run, tmp_path / "model")
    noise = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        got = webtools.browser(f"{base}/web/?model=/model/", f"vaeportPrior({json.dumps(noise.tolist())})")
    want = VAE.load(model).prior.sample(noise)
    assert not np.allclose(want, noise, atol=1e-3)  # the flow moved them
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_demo_sliders_move_the_most_informative_dimensions(tmp_path):
    """With an eval.json beside the model, the sliders follow the active dimensions by KL (the
    order vae-plot --traverse draws them in); without one, the first dimensions."""
    from vaeport.export import export

    model = export(make_run(tmp_path / "run", hidden=(16,), latent_dim=6), tmp_path / "model")
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        plain = webtools.browser(f"{base}/web/?model=/model/", "vaeportSliderDims")
    result = {"kl_per_dim": [0.1, 3.0, 0.0, 1.5, 2.0, 0.5], "mean_activity": [0.5, 0.9, 0.001, 0.5, 0.7, 0.2]}
    (model / "eval.json").write_text(json.dumps({"format": "vaeport-eval", "format_version": 1, "onnx": result}))
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        ordered = webtools.browser(f"{base}/web/?model=/model/", "vaeportSliderDims")
    assert plain == [0, 1, 2, 3]
    assert ordered == [1, 4, 3, 5]  # by KL; dimension 2 is inactive


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_numpy_generator_in_javascript_draws_numpy_uniforms():
    """web/numpy_random.js reproduces np.random.default_rng([seed, block]).random() bit for bit,
    across a block boundary and for a seed wider than 32 bits."""
    from vaeport.runtime.sampling import prior_uniforms

    cases = [(0, 0, 3, 5), (7, 1020, 6, 50), (2**40 + 3, 5, 2, 4)]
    script = "import { uniformRows } from " + json.dumps((ROOT / "web" / "numpy_random.js").as_uri()) + ";"
    script += f"process.stdout.write(JSON.stringify({json.dumps(cases)}.map(([s, a, n, d]) => "
    script += "uniformRows(s, a, n, d).map((r) => Array.from(r)))));"
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for (seed, start, count, dim), got in zip(cases, json.loads(done.stdout), strict=True):
        assert np.array_equal(np.asarray(got), prior_uniforms(seed, start, count, dim))


VQ_SHIPPED = ROOT / "models" / "fashion-mnist-vq"


@pytest.mark.slow
@pytest.mark.skipif(webtools.missing_tools() is not None, reason=str(webtools.missing_tools()))
def test_demo_page_samples_a_vqvae_as_python(request, tmp_path):
    """A VQ-VAE folder: the page's JavaScript loop (prior_step once per position, numpy's uniforms)
    gives the codes Python's runtime draws for the same seed, with a class picked and with the
    classes drawn from the training frequencies, and the pixels its decoder gives them."""
    from vaeport.runtime import VAE

    model = VQ_SHIPPED if (VQ_SHIPPED / "vae.json").exists() else request.getfixturevalue("vq_model")
    vae = VAE.load(model)
    n, seed = 6, 11
    shot = tmp_path / "web-vq.png"
    probe = f"Promise.all([vaeportCodes({n}, {seed}, 3), vaeportCodes({n}, {seed}), vaeportCodes({n}, {seed}, 1, 0)])"
    with webtools.serve({"/web/": webtools.WEB, "/model/": model}) as base:
        picked, drawn, greedy = webtools.browser(f"{base}/web/?model=/model/", probe, shot)
    h, w = vae.image_shape[1:]
    for got, label, temperature in ((picked, 3, 1.0), (drawn, None, 1.0), (greedy, 1, 0.0)):
        codes = vae.sample_latent(n, seed=seed, temperature=temperature, label=label)
        assert np.array_equal(np.asarray(got["codes"]).reshape(codes.shape), codes)
        want_labels = [label] * n if label is not None else vae.drawn_classes(n, seed).tolist()
        assert got["labels"] == want_labels
        pixels = np.asarray(got["rgba"], dtype=np.int32).reshape(h, n * w, 4)[:, :, 0]
        expected = np.rint(vae.decode(codes)[:, 0] * 255).astype(np.int32)
        assert np.abs(pixels - np.concatenate(list(expected), axis=1)).max() <= 1
    assert len(set(drawn["labels"])) > 1  # the classes were drawn, not fixed
    assert shot.stat().st_size > 10_000
    if model == VQ_SHIPPED:  # the picture docs/vqvae.md shows
        target = ROOT / "docs" / "web-demo-vq.png"
        tmp = target.with_suffix(".png.tmp")
        tmp.write_bytes(shot.read_bytes())
        tmp.replace(target)
