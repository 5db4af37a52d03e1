import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vaeport.runtime import VAE, InputError, ModelFolderError
from vaeport.runtime.cli import main as generate_main
from vaeport.runtime.generate import GenerateSpec, chunks_of_shard, generate


@pytest.fixture(scope="module")
def vae(digits_model):
    return VAE.load(digits_model, device="cpu")


def npy_files(folder):
    return {p.name: np.load(p) for p in sorted(Path(folder).glob("*.npy"))}


def test_streams_chunks_that_match_sample(vae, tmp_path):
    summary = generate(vae, GenerateSpec(n=2500, seed=4, chunk_size=1000, batch_size=300), tmp_path)
    files = npy_files(tmp_path)
    assert list(files) == [
        "images-0000000000-0000000999.npy",
        "images-0000001000-0000001999.npy",
        "images-0000002000-0000002499.npy",
    ]
    everything = np.concatenate(list(files.values()))
    np.testing.assert_allclose(everything, vae.sample(2500, seed=4), atol=1e-6)
    assert summary["images_written"] == 2500
    assert json.loads((tmp_path / "generate-0-of-1.json").read_text())["seed"] == 4


def test_sharded_equals_unsharded(vae, tmp_path):
    generate(vae, GenerateSpec(n=3300, seed=1, chunk_size=500), tmp_path / "one")
    for i in range(4):
        generate(vae, GenerateSpec(n=3300, seed=1, chunk_size=500, shard=(i, 4)), tmp_path / "four")
    one, four = npy_files(tmp_path / "one"), npy_files(tmp_path / "four")
    assert list(one) == list(four) and len(one) == 7
    for name in one:
        np.testing.assert_array_equal(one[name], four[name])


def test_shards_partition_the_chunks():
    spec = GenerateSpec(n=10_000, chunk_size=1000)
    covered = [c for i in range(3) for c in chunks_of_shard(GenerateSpec(n=10_000, chunk_size=1000, shard=(i, 3)))]
    assert covered == chunks_of_shard(spec)


def test_resume_after_interruption(vae, tmp_path):
    spec = GenerateSpec(n=3000, seed=2, chunk_size=1000, batch_size=250)
    seen = []

    def stop_in_second_chunk(count):
        seen.append(count)
        if sum(seen) > 1500:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(vae, spec, tmp_path / "cut", progress=stop_in_second_chunk)
    assert list(npy_files(tmp_path / "cut")) == ["images-0000000000-0000000999.npy"]
    assert not [p for p in (tmp_path / "cut").iterdir() if p.name.startswith(".")]
    summary = generate(vae, spec, tmp_path / "cut")
    assert summary["images_skipped"] == 1000 and summary["images_written"] == 2000
    generate(vae, spec, tmp_path / "full")
    cut, full = npy_files(tmp_path / "cut"), npy_files(tmp_path / "full")
    for name in full:
        np.testing.assert_array_equal(cut[name], full[name])


def test_a_failed_background_write_stops_the_run(vae, tmp_path, monkeypatch):
    import vaeport.runtime.generate as gen

    real, calls = gen.atomic_write, []

    def fail_second(path, write, sync=True):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, write, sync)

    monkeypatch.setattr(gen, "atomic_write", fail_second)
    with pytest.raises(OSError, match="disk full"):
        generate(vae, GenerateSpec(n=4000, seed=0, chunk_size=1000), tmp_path)
    assert list(npy_files(tmp_path)) == ["images-0000000000-0000000999.npy"]
    assert len(calls) == 2  # the run stopped at the failed chunk instead of decoding on
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_other_generation_in_out_is_refused(vae, tmp_path):
    generate(vae, GenerateSpec(n=100, seed=1), tmp_path)
    with pytest.raises(InputError, match="differs in seed"):
        generate(vae, GenerateSpec(n=100, seed=2), tmp_path)
    with pytest.raises(InputError, match="differs in dtype"):
        generate(vae, GenerateSpec(n=100, seed=1, dtype="uint8"), tmp_path)


def test_npy_dtypes_store_the_same_images(vae, tmp_path):
    reference = vae.sample(1200, seed=3)
    for dtype in ("uint8", "float16"):
        generate(vae, GenerateSpec(n=1200, seed=3, chunk_size=500, dtype=dtype), tmp_path / dtype)
        stored = np.concatenate(list(npy_files(tmp_path / dtype).values()))
        assert stored.dtype == np.dtype(dtype) and stored.shape == reference.shape
        if dtype == "uint8":  # round(255 p): within half a grey level
            assert np.abs(stored / 255.0 - reference).max() <= 0.5 / 255 + 1e-6
        else:
            np.testing.assert_allclose(stored, reference, atol=1e-3)


def test_png_and_grid(vae, tmp_path):
    generate(vae, GenerateSpec(n=30, seed=0, format="png", chunk_size=20), tmp_path / "png")
    folders = sorted(p.name for p in (tmp_path / "png").iterdir() if p.is_dir())
    assert folders == ["png-0000000000-0000000019", "png-0000000020-0000000029"]
    first = np.asarray(Image.open(tmp_path / "png" / folders[0] / "0000000000.png"))
    assert first.shape == (8, 8) and first.dtype == np.uint8
    expected = np.clip(np.rint(vae.sample(1, seed=0)[0, 0] * 255), 0, 255)
    np.testing.assert_allclose(first, expected, atol=1)
    generate(vae, GenerateSpec(n=16, format="grid"), tmp_path / "grid")
    assert Image.open(tmp_path / "grid" / "grid.png").size == (4 * 9 + 1, 4 * 9 + 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "positive integer"),
        ({"n": 5, "shard": (4, 4)}, "0 <= i < n"),
        ({"n": 5, "format": "grid", "shard": (0, 2)}, "no sharding"),
        ({"n": 5, "format": "tiff"}, "--format"),
        ({"n": 5, "dtype": "int32"}, "--dtype to be one of"),
        ({"n": 5, "format": "png", "dtype": "uint8"}, "--dtype float32 with --format png"),
    ],
)
def test_spec_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        GenerateSpec(**kwargs)


def test_cli(digits_model, tmp_path):
    result = CliRunner().invoke(
        generate_main, [str(digits_model), "-n", "100", "--out", str(tmp_path / "o"), "--quiet", "--variant", "fp16"]
    )
    assert result.exit_code == 0, result.stderr
    assert "wrote 100 images" in result.stdout and "fp16 on cpu" in result.stderr
    result = CliRunner().invoke(generate_main, [str(digits_model), "-n", "-5", "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and "expected -n to be a positive integer, got -5" in result.stderr
    result = CliRunner().invoke(generate_main, [str(tmp_path / "none"), "-n", "5", "--out", str(tmp_path / "p")])
    assert result.exit_code == ModelFolderError.exit_code and "expected a model folder" in result.stderr
    result = CliRunner().invoke(
        generate_main, [str(digits_model), "-n", "5", "--out", str(tmp_path / "p"), "--shard", "x"]
    )
    assert result.exit_code == 2 and "expected --shard as i/n" in result.stderr


@pytest.fixture(scope="module")
def idx_model(tmp_path_factory):
    """A small VAE on an MNIST-shaped IDX set (read with numpy only, so vae-eval needs no extra)."""
    from vaeport.export import export

    from ..conftest import write_idx_set
    from ..helpers import make_run

    root = tmp_path_factory.mktemp("idx-model")
    data = write_idx_set(root / "idx")
    run = make_run(root / "run", dataset="mnist", data_dir=data, hidden=(16,), latent_dim=2)
    return export(run, root / "model"), data


@pytest.mark.slow
def test_runtime_in_a_clean_environment_without_torch(digits_model, idx_model, tmp_path):
    """Build the wheel, install vaeport[cpu] in a fresh venv (no torch), and use the runtime,
    vae-generate and vae-eval on a model folder (the README says they need numpy and onnxruntime
    only); what needs another extra says which."""
    root = Path(__file__).resolve().parents[2]
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(root)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(dist.glob("vaeport-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[cpu]"], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-2000:]
    script = f"""
import importlib.util, sys
from vaeport.runtime import VAE
vae = VAE.load({str(digits_model)!r}, device="auto")
x = vae.sample(8, seed=0)
mean, log_var = vae.encode(x)
assert vae.decode(mean).shape == (8, 1, 8, 8)
assert importlib.util.find_spec("torch") is None, "torch is installed"
assert "torch" not in sys.modules
print("ok", vae.device)
"""
    used = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=300)
    assert used.returncode == 0 and "ok cpu" in used.stdout, used.stderr
    gen = subprocess.run(
        [str(venv / "bin" / "vae-generate"), str(digits_model), "-n", "50", "--out", str(tmp_path / "gen"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert gen.returncode == 0, gen.stderr
    assert (tmp_path / "gen" / "images-0000000000-0000000049.npy").exists()
    train = subprocess.run(
        [str(venv / "bin" / "vae-train"), "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300
    )
    assert train.returncode == 4 and "pip install 'vaeport[train]'" in train.stderr
    model, data = idx_model
    evaluated = subprocess.run(
        [str(venv / "bin" / "vae-eval"), str(model), "--k", "2", "--data-dir", str(data), "--out", str(tmp_path / "e.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert "IWAE-2 bound" in evaluated.stdout and (tmp_path / "e.json").exists()
    digits = subprocess.run(
        [str(venv / "bin" / "vae-eval"), str(digits_model), "--out", str(tmp_path / "d.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert digits.returncode == 4 and "pip install 'vaeport[train]'" in digits.stderr, digits.stderr
