import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest

from vaeport.runtime import VAE, InputError, ModelFolderError
from vaeport.runtime.hashing import sha256_file
from vaeport.runtime.onnx_scan import external_locations
from vaeport.runtime.session import DeviceError, cuda_available
from vaeport.train.datasets import load_dataset

from .folders import copy_folder


@pytest.fixture(scope="module")
def vae(digits_model):
    return VAE.load(digits_model, device="cpu")


@pytest.fixture(scope="module")
def images():
    return load_dataset("digits", seed=0).test[:20]


def test_properties(vae):
    assert vae.latent_dim == 4 and vae.image_shape == (1, 8, 8)
    assert vae.manifest.format_version == 2 and vae.device == "cpu" and vae.variational
    assert vae.classes is None and not vae.conditional


def test_sample_is_seeded(vae):
    a, b, c = vae.sample(5, seed=1), vae.sample(5, seed=1), vae.sample(5, seed=2)
    assert a.shape == (5, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_sample_latent_prefix_and_temperature(vae):
    z10 = vae.sample_latent(10, seed=3)
    np.testing.assert_array_equal(vae.sample_latent(4, seed=3), z10[:4])
    np.testing.assert_allclose(vae.sample_latent(10, seed=3, temperature=0.5), 0.5 * z10)
    big = vae.sample_latent(20000, seed=0)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1.0) < 0.02


def test_encode_decode_reconstruct(vae, images):
    mean, log_var = vae.encode(images)
    assert mean.shape == (20, 4) and log_var.shape == (20, 4)
    np.testing.assert_array_equal(vae.reconstruct(images), vae.decode(mean))
    r1, r2 = vae.reconstruct(images, seed=5), vae.reconstruct(images, seed=5)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, vae.reconstruct(images))
    # reconstructions are closer to their own image than to others'
    rec = vae.reconstruct(images)
    own = np.abs(rec - images).mean()
    shuffled = np.abs(rec - images[::-1]).mean()
    assert own < shuffled


def test_input_forms_agree(vae, images):
    first = vae.encode(images[:1])[0]
    np.testing.assert_array_equal(vae.encode(images[0])[0], first)  # [C,H,W]
    np.testing.assert_array_equal(vae.encode(images[0, 0])[0], first)  # [H,W]
    as_uint8 = np.rint(images * 255).astype(np.uint8)
    np.testing.assert_allclose(vae.encode(as_uint8)[0], vae.encode(as_uint8 / 255.0)[0], atol=1e-6)
    np.testing.assert_array_equal(vae.decode(first[0]), vae.decode(first))  # [D]


def test_batching_matches_one_batch(digits_model, images):
    small = VAE.load(digits_model, device="cpu", batch_size=3)
    big = VAE.load(digits_model, device="cpu", batch_size=256)
    np.testing.assert_allclose(small.encode(images)[0], big.encode(images)[0], atol=1e-6)
    z = big.sample_latent(50, seed=0)
    np.testing.assert_allclose(small.decode(z), big.decode(z), atol=1e-6)


def test_interpolate(vae, images):
    for method in ("slerp", "linear"):
        frames = vae.interpolate(images[0], images[1], steps=6, method=method)
        assert frames.shape == (6, 1, 8, 8)
        np.testing.assert_allclose(frames[0], vae.reconstruct(images[:1])[0], atol=1e-6)
        np.testing.assert_allclose(frames[-1], vae.reconstruct(images[1:2])[0], atol=1e-6)
    za, zb = vae.sample_latent(2, seed=0)
    linear = vae.interpolate(za, zb, steps=3, method="linear")
    np.testing.assert_allclose(linear[1], vae.decode((za + zb) / 2)[0], atol=1e-6)
    slerp_mid = vae.interpolate(za, zb, steps=3)[1]
    assert not np.allclose(slerp_mid, linear[1], atol=1e-4)


def test_threads_match_serial(vae):
    seeds = list(range(16))
    serial = [vae.sample(32, seed=s) for s in seeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda s: vae.sample(32, seed=s), seeds))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_rss_does_not_ratchet_with_varying_batch_sizes(digits_model):
    vae = VAE.load(digits_model, device="cpu", batch_size=256)
    rng = np.random.default_rng(0)
    vae.decode(vae.sample_latent(256, seed=0))  # the largest batch the sessions ever see
    vae.encode(vae.sample(256, seed=0))
    before = rss_mb()
    for _ in range(60):
        x = vae.sample(int(rng.integers(1, 3000)), seed=0)
        vae.encode(x)
    del x
    assert rss_mb() - before < 15


@pytest.mark.parametrize("variant", ["fp16", "int8"])
def test_variants_close_to_fp32(digits_model, vae, variant):
    other = VAE.load(digits_model, device="cpu", variant=variant)
    assert other.variant == variant
    z = vae.sample_latent(64, seed=0)
    assert np.abs(other.decode(z) - vae.decode(z)).mean() < 0.02


def test_plain_autoencoder(ae_model, images):
    ae = VAE.load(ae_model, device="cpu")
    z, log_var = ae.encode(images)
    assert z.shape == (20, 3) and log_var is None and not ae.variational
    np.testing.assert_array_equal(ae.reconstruct(images, seed=3), ae.decode(z))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda v: v.encode(np.zeros((2, 28, 28), np.float32)),
            r"expected x of shape \[N,1,8,8\] .* got \[2,28,28\] float32",
        ),
        (lambda v: v.encode(np.zeros((2, 1, 8, 8), np.int32)), r"got \[2,1,8,8\] int32"),
        (lambda v: v.encode(np.full((1, 8, 8), np.nan, np.float32)), "NaN or Inf"),
        (lambda v: v.encode(np.full((1, 8, 8), 2.0, np.float32)), r"got values in \[2, 2\]"),
        (lambda v: v.decode(np.zeros((3, 5), np.float32)), r"expected z of shape \[N,4\]"),
        (lambda v: v.decode(np.array([[np.inf, 0, 0, 0]], np.float32)), "NaN or Inf"),
        (lambda v: v.sample(0), "expected n to be a positive integer, got 0"),
        (lambda v: v.sample(-3), "positive integer"),
        (lambda v: v.sample(2, temperature=float("nan")), "temperature"),
        (lambda v: v.interpolate(np.zeros(4), np.zeros(4), method="cubic"), "method"),
    ],
)
def test_bad_input(vae, call, message):
    with pytest.raises(InputError, match=message):
        call(vae)


def edit_manifest(folder, change):
    path = folder / "vae.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_extra_tampered_and_unknown_version(digits_model, tmp_path):
    missing = copy_folder(digits_model, tmp_path / "missing")
    (missing / "decoder.onnx").unlink()
    with pytest.raises(ModelFolderError, match="expected decoder.onnx .* got no such file"):
        VAE.load(missing, device="cpu")
    extra = copy_folder(digits_model, tmp_path / "extra")
    (extra / "other.onnx").write_bytes(b"x")
    with pytest.raises(ModelFolderError, match="got an extra other.onnx"):
        VAE.load(extra, device="cpu")
    tampered = copy_folder(digits_model, tmp_path / "tampered")
    data = bytearray((tampered / "encoder.int8.onnx").read_bytes())
    data[100] ^= 1
    (tampered / "encoder.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="encoder.int8.onnx: expected sha256"):
        VAE.load(tampered, device="cpu")  # even a variant not being loaded is checked
    version = copy_folder(digits_model, tmp_path / "version")
    edit_manifest(version, lambda m: m.update(format_version=99))
    with pytest.raises(ModelFolderError, match="expected format_version to be the integer 1, 2, 3 or 4, got 99"):
        VAE.load(version, device="cpu")
    with pytest.raises(ModelFolderError, match="expected a model folder"):
        VAE.load(tmp_path / "nowhere")
    with pytest.raises(InputError, match="variant"):
        VAE.load(digits_model, variant="int4")


def test_manifest_path_escape_is_refused(digits_model, tmp_path):
    folder = copy_folder(digits_model, tmp_path / "escape")
    (tmp_path / "secret.onnx").write_bytes(b"x")
    edit_manifest(
        folder, lambda m: m["files"].update({"../secret.onnx": {"sha256": sha256_file(tmp_path / "secret.onnx")}})
    )
    with pytest.raises(ModelFolderError, match="expected file paths inside the model folder, got '../secret.onnx'"):
        VAE.load(folder, device="cpu")


def test_external_data_escape_is_refused(digits_model, tmp_path):
    folder = copy_folder(digits_model, tmp_path / "ext")
    model = onnx.load(str(folder / "decoder.onnx"))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    (folder / "decoder.onnx").write_bytes(model.SerializeToString())
    assert external_locations((folder / "decoder.onnx").read_bytes()) == ["../../etc/passwd"]
    edit_manifest(folder, lambda m: m["files"]["decoder.onnx"].update(sha256=sha256_file(folder / "decoder.onnx")))
    with pytest.raises(ModelFolderError, match="inside the model folder, got '../../etc/passwd'"):
        VAE.load(folder, device="cpu")


@pytest.mark.skipif(cuda_available(), reason="checks the error on a machine without CUDA")
def test_cuda_asked_without_cuda(digits_model):
    with pytest.raises(DeviceError, match="expected CUDA for device='cuda'"):
        VAE.load(digits_model, device="cuda")
    assert VAE.load(digits_model, device="auto").device == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not cuda_available(), reason="needs onnxruntime-gpu and a GPU")
def test_cuda_matches_cpu(digits_model):
    gpu, cpu = VAE.load(digits_model, device="cuda"), VAE.load(digits_model, device="cpu")
    assert gpu.device == "cuda"
    z = cpu.sample_latent(256, seed=0)
    np.testing.assert_allclose(gpu.decode(z), cpu.decode(z), atol=1e-4)


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_format_version_must_be_the_integer(digits_model, tmp_path, version):
    folder = copy_folder(digits_model, tmp_path / "v")
    edit_manifest(folder, lambda m: m.update(format_version=version))
    with pytest.raises(ModelFolderError, match=f"expected format_version to be the integer 1, 2, 3 or 4, got {version!r}"):
        VAE.load(folder, device="cpu")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["model"].update(latent_dim=5), r"latent_dim 5 in vae.json\), got x \[N,1,8,8\] -> z_mean \[N,4\]"),
        (lambda m: m["image"].update(height=9), r"expected the encoder graph, x \[N,1,9,8\]"),
        (lambda m: m["image"].update(channels=3), r"\(image 3x8x8, latent_dim 4 in vae.json\)"),
        (lambda m: m["model"].update(kind="ae"), r"-> z \[N,4\] .* got x \[N,1,8,8\] -> z_mean \[N,4\], z_log_var"),
        (lambda m: m["model"].update(latent_dim="4"), "expected model.latent_dim to be a positive integer, got '4'"),
        (lambda m: m["image"].update(width=0), "expected image.width to be a positive integer, got 0"),
        (lambda m: m["model"].update(likelihood="poisson"), "expected model.likelihood to be bernoulli or gaussian"),
        (lambda m: m["graphs"].pop("fp32"), "expected an fp32 entry in graphs"),
    ],
)
def test_manifest_that_disagrees_with_its_graphs_is_refused(digits_model, tmp_path, change, message):
    folder = copy_folder(digits_model, tmp_path / "lying")
    edit_manifest(folder, change)
    with pytest.raises(ModelFolderError, match=message):
        VAE.load(folder, device="cpu")


def test_swapped_encoder_and_decoder_are_named(digits_model, tmp_path):
    folder = copy_folder(digits_model, tmp_path / "swapped")
    encoder, decoder = (folder / "encoder.onnx").read_bytes(), (folder / "decoder.onnx").read_bytes()
    (folder / "encoder.onnx").write_bytes(decoder)
    (folder / "decoder.onnx").write_bytes(encoder)

    def swap(m):
        files = m["files"]
        files["encoder.onnx"], files["decoder.onnx"] = files["decoder.onnx"], files["encoder.onnx"]

    edit_manifest(folder, swap)
    with pytest.raises(ModelFolderError, match="expected the encoder graph.*encoder and decoder look swapped"):
        VAE.load(folder, device="cpu")


@pytest.mark.parametrize("seed", ["abc", -1, "1", 1.9, True, None])
def test_seed_must_be_a_non_negative_integer(vae, images, seed):
    calls = [lambda: vae.sample_latent(2, seed=seed), lambda: vae.sample(2, seed=seed)]
    if seed is not None:  # None means "fresh randomness" for sampling, "the posterior mean" for reconstruct
        calls.append(lambda: vae.reconstruct(images[:2], seed=seed))
        for call in calls:
            with pytest.raises(InputError, match=f"expected seed to be a non-negative integer, got {seed!r}"):
                call()
    else:
        assert vae.sample(2, seed=None).shape == (2, 1, 8, 8)


def test_numpy_integer_seeds_are_accepted(vae):
    np.testing.assert_array_equal(vae.sample(3, seed=np.int64(4)), vae.sample(3, seed=4))
    np.testing.assert_array_equal(vae.sample(3, seed=np.uint8(4)), vae.sample(3, seed=4))


def test_large_decode_costs_the_result_plus_one_batch(digits_model):
    """decode of 400,000 latents (a 102 MB result) in a fresh process: peak RSS grows by about the
    result, not twice it (the batches are written into one preallocated array)."""
    import subprocess
    import sys

    script = f"""
import numpy as np
from vaeport.runtime import VAE

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

vae = VAE.load({str(digits_model)!r}, device="cpu")
z = vae.sample_latent(400_000, seed=0)
vae.decode(z[:256]); vae.decode(z[:256])  # sessions warm, arena at one batch
before = peak()
x = vae.decode(z)
print(before, peak(), x.nbytes / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    before, after, result_mb = (float(v) for v in out.stdout.split())
    assert after - before < result_mb * 1.25, (before, after, result_mb)
