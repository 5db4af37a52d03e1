"""vae-generate on a conditional model: --label and --per-class, labels written beside each chunk
under the same exact-sharding, atomic and resume rules as the images."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vaeport.runtime import VAE, InputError
from vaeport.runtime.cli import main as generate_main
from vaeport.runtime.generate import GenerateSpec, generate


@pytest.fixture(scope="module")
def cvae(cvae_model):
    return VAE.load(cvae_model, device="cpu")


def files(folder, prefix):
    return {p.name: np.load(p) for p in sorted(folder.glob(f"{prefix}-*.npy"))}


def test_per_class_writes_balanced_labels_beside_the_images(cvae, tmp_path):
    spec = GenerateSpec(n=250, seed=3, chunk_size=100, per_class=True, classes=10)
    generate(cvae, spec, tmp_path)
    images, labels = files(tmp_path, "images"), files(tmp_path, "labels")
    assert list(labels) == [name.replace("images", "labels") for name in images]
    y = np.concatenate(list(labels.values()))
    assert y.dtype == np.int64 and np.array_equal(y, np.arange(250) % 10)
    counts = [np.bincount(chunk, minlength=10) for chunk in labels.values()]
    assert [c.tolist() for c in counts] == [[10] * 10, [10] * 10, [5] * 10]  # every chunk is balanced
    x = np.concatenate(list(images.values()))
    np.testing.assert_allclose(x, cvae.decode(cvae.sample_latent(250, seed=3), label=y), atol=1e-6)
    record = json.loads((tmp_path / "generate-0-of-1.json").read_text())
    assert record["per_class"] is True and set(record["chunks"]) == set(images) | set(labels)


def test_one_label_by_name_or_index(cvae, tmp_path):
    generate(cvae, GenerateSpec(n=30, seed=0, label=7, classes=10), tmp_path / "a")
    result = CliRunner().invoke(
        generate_main, [str(cvae.manifest.folder), "-n", "30", "--label", "7", "--out", str(tmp_path / "b"), "--quiet"]
    )
    assert result.exit_code == 0, result.stderr
    a, b = files(tmp_path / "a", "images"), files(tmp_path / "b", "images")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_allclose(next(iter(a.values())), cvae.sample(30, seed=0, label="7"), atol=1e-6)
    assert np.all(next(iter(files(tmp_path / "a", "labels").values())) == 7)


def test_sharded_labelled_equals_unsharded(cvae, tmp_path):
    spec = dict(n=330, seed=1, chunk_size=50, per_class=True, classes=10)
    generate(cvae, GenerateSpec(**spec), tmp_path / "one")
    for i in range(3):
        generate(cvae, GenerateSpec(**spec, shard=(i, 3)), tmp_path / "three")
    for prefix in ("images", "labels"):
        one, three = files(tmp_path / "one", prefix), files(tmp_path / "three", prefix)
        assert list(one) == list(three) and len(one) == 7
        for name in one:
            np.testing.assert_array_equal(one[name], three[name])


def test_damaged_labels_are_rewritten_on_resume(cvae, tmp_path):
    spec = GenerateSpec(n=200, seed=2, chunk_size=100, per_class=True, classes=10)
    generate(cvae, spec, tmp_path / "a")
    generate(cvae, spec, tmp_path / "b")
    (tmp_path / "b" / "labels-0000000100-0000000199.npy").write_bytes(b"not a labels file")
    (tmp_path / "b" / "labels-0000000000-0000000099.npy").unlink()
    summary = generate(cvae, spec, tmp_path / "b")
    assert summary["images_written"] == 200 and summary["images_skipped"] == 0
    for prefix in ("images", "labels"):
        a, b = files(tmp_path / "a", prefix), files(tmp_path / "b", prefix)
        assert list(a) == list(b)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    assert generate(cvae, spec, tmp_path / "b")["images_skipped"] == 200


def test_another_label_in_the_same_folder_is_refused(cvae, tmp_path):
    generate(cvae, GenerateSpec(n=20, seed=0, label=1, classes=10), tmp_path)
    with pytest.raises(InputError, match="differs in label"):
        generate(cvae, GenerateSpec(n=20, seed=0, label=2, classes=10), tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "5"], "expected --label NAME|INDEX or --per-class N: this model is conditional (0 '0', 1 '1'"),
        (["-n", "5", "--label", "cat"], "expected --label to be a class of this model"),
        (["-n", "5", "--label", "12"], "expected --label to be a class index 0..9"),
        (["--per-class", "2", "--label", "1"], "expected one of --label or --per-class, got both"),
        (["-n", "5", "--per-class", "2"], "expected -n N or --per-class N (a conditional model), got both"),
    ],
)
def test_cli_label_errors(cvae_model, tmp_path, args, message):
    result = CliRunner().invoke(generate_main, [str(cvae_model), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def test_cli_refuses_labels_for_an_unconditional_model(digits_model, tmp_path):
    result = CliRunner().invoke(generate_main, [str(digits_model), "--per-class", "3", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "expected no --per-class: this model is unconditional" in result.stderr
