import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from vaeport.runtime.errors import InputError
from vaeport.runtime.idx import read_idx_bytes
from vaeport.train import fetch
from vaeport.train.datasets import load_dataset
from vaeport.train.fetch import IdxDataset, download_set, locate_idx_files

from ..conftest import write_idx_set


def test_digits_shape_range_and_seeded_split():
    a = load_dataset("digits", seed=0)
    b = load_dataset("digits", seed=0)
    c = load_dataset("digits", seed=1)
    assert a.train.shape == (1617, 1, 8, 8) and a.test.shape == (180, 1, 8, 8)
    assert a.train.dtype == np.float32 and a.train.min() == 0.0 and a.train.max() == 1.0
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    assert len(a.train_labels) == 1617 and set(a.test_labels) <= set(range(10))


def test_idx_dataset_from_data_dir(idx_dir):
    data = load_dataset("fashion-mnist", data_dir=idx_dir)
    assert data.train.shape == (96, 1, 28, 28) and data.test.shape == (32, 1, 28, 28)
    assert data.split == "official" and data.train.max() <= 1.0 and data.train.max() > 0.5
    assert data.train_labels.shape == (96,)


def test_idx_dataset_in_name_subfolder_of_env(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "store" / "mnist")
    monkeypatch.setenv("VAEPORT_DATA", str(tmp_path / "store"))
    assert load_dataset("mnist").train.shape == (96, 1, 28, 28)


def test_missing_idx_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEPORT_DATA", str(tmp_path / "env"))
    with pytest.raises(InputError) as info:
        locate_idx_files("mnist", data_dir=tmp_path / "given")
    message = str(info.value)
    for place in (tmp_path / "given", tmp_path / "env", "/usr/share/datasets/mnist", "cache"):
        assert str(place) in message


def test_mismatched_labels_count(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    shutil.copy(folder / "t10k-labels-idx1-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
    with pytest.raises(InputError, match="expected images \\[N,H,W\\] and N labels"):
        load_dataset("mnist", data_dir=folder)


def fake_spec(source):
    return IdxDataset(
        name="tiny",
        mirrors=(source.as_uri() + "/",),
        sha256={
            stem: hashlib.sha256(read_idx_bytes(source / f"{stem}.gz")).hexdigest()
            for stem in fetch.SPLIT_FILES.values()
        },
        license="test",
    )


def test_download_verifies_and_renames(tmp_path):
    source = write_idx_set(tmp_path / "mirror")
    paths = download_set(fake_spec(source), tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(p.name for p in paths.values())


def test_download_rejects_bad_checksum_and_leaves_nothing(tmp_path):
    source = write_idx_set(tmp_path / "mirror")
    spec = fake_spec(source)
    spec.sha256["t10k-images-idx3-ubyte"] = "0" * 64
    with pytest.raises(InputError, match="expected sha256 0000"):
        download_set(spec, tmp_path / "cache")
    assert not (tmp_path / "cache" / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".part")]


def test_download_tries_next_mirror(tmp_path):
    source = write_idx_set(tmp_path / "mirror")
    good = fake_spec(source)
    spec = IdxDataset("tiny", ((tmp_path / "nowhere").as_uri() + "/", *good.mirrors), good.sha256, "t")
    assert len(download_set(spec, tmp_path / "cache")) == 4


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_gray_with_class_subfolders(tmp_path):
    for i in range(10):
        write_png(tmp_path / "imgs" / ("cat" if i % 2 else "dog") / f"{i}.png", np.full((6, 5), i * 20, dtype=np.uint8))
    data = load_dataset(f"folder:{tmp_path / 'imgs'}", seed=0)
    assert data.image_shape == (1, 6, 5)
    assert len(data.train) == 9 and len(data.test) == 1
    assert set(np.concatenate([data.train_labels, data.test_labels])) == {0, 1}


def test_folder_rgb_resized(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((10, 12, 3), dtype=np.uint8))
    write_png(tmp_path / "b.png", np.full((20, 20, 3), 255, dtype=np.uint8))
    data = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert data.image_shape == (3, 8, 8)


def test_folder_mixed_sizes_error(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((10, 12), dtype=np.uint8))
    write_png(tmp_path / "b.png", np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(InputError, match=r"expected images of one size .* got 12x10 \(a\.png\) and 8x8"):
        load_dataset(f"folder:{tmp_path}")


def test_folder_empty_error(tmp_path):
    with pytest.raises(InputError, match="found none"):
        load_dataset(f"folder:{tmp_path}")


def test_npy_uint8_and_float(tmp_path):
    np.save(tmp_path / "u.npy", np.full((20, 4, 4), 255, dtype=np.uint8))
    np.save(tmp_path / "f.npy", np.full((20, 3, 4, 4), 0.5, dtype=np.float32))
    u = load_dataset(f"npy:{tmp_path / 'u.npy'}")
    f = load_dataset(f"npy:{tmp_path / 'f.npy'}")
    assert u.image_shape == (1, 4, 4) and u.train.max() == 1.0
    assert f.image_shape == (3, 4, 4) and len(f.train) == 18


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((4, 4, 4), 2.0, dtype=np.float32), "expected values in \\[0, 1\\], got range \\[2, 2\\]"),
        (np.zeros((4, 4), dtype=np.uint8), "expected shape \\[N,H,W\\] or \\[N,C,H,W\\], got \\[4, 4\\]"),
        (np.full((4, 4, 4), np.nan, dtype=np.float32), "NaN or Inf"),
        (np.zeros((4, 4, 4), dtype=np.int32), "expected uint8 or float images, got int32"),
    ],
)
def test_npy_errors(tmp_path, array, message):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(InputError, match=message):
        load_dataset(f"npy:{tmp_path / 'x.npy'}")


def test_unknown_dataset():
    with pytest.raises(InputError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def bad_image_folder(root, how):
    """Four good PNGs in two classes and one bad file among them."""
    for i in range(4):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(folder / f"{i}.png")
    bad = root / "b" / "bad.png"
    good = (root / "b" / "0.png").read_bytes()
    if how == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif how == "corrupt":
        data = bytearray(good)
        data[40:60] = bytes(20)  # inside the IDAT stream
        bad.write_bytes(bytes(data))
    else:  # a text file named .png
        bad.write_text("not an image at all")
    return bad


@pytest.mark.parametrize("how", ["truncated", "corrupt", "fake"])
def test_unreadable_image_is_named_or_skipped(tmp_path, how):
    bad_image_folder(tmp_path / "imgs", how)
    with pytest.raises(InputError, match=r"got b/bad\.png \(.+\); remove it or pass --skip-bad-images"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")
    data = load_dataset(f"folder:{tmp_path / 'imgs'}", skip_bad=True)
    assert len(data.train) + len(data.test) == 4
    assert len(data.skipped) == 1 and data.skipped[0].startswith("b/bad.png: ")


def test_skipped_images_are_recorded_in_the_run(tmp_path):
    from vaeport.train import TrainConfig, fit

    bad_image_folder(tmp_path / "imgs", "fake")
    config = TrainConfig(dataset=f"folder:{tmp_path / 'imgs'}", skip_bad_images=True, hidden=(4,), latent_dim=2,
                         epochs=1, batch_size=2, threads=1)  # fmt: skip
    run = fit(config, tmp_path / "run", quiet=True)
    skipped = run.record["data"]["skipped_images"]
    assert len(skipped) == 1 and skipped[0].startswith("b/bad.png: ")


def test_holdout_is_seeded_disjoint_and_recorded(tmp_path):
    from vaeport.train import TrainConfig, fit
    from vaeport.train.datasets import hold_out

    data = load_dataset("digits", seed=0)
    a, b = hold_out(data, 500, seed=0), hold_out(data, 500, seed=0)
    assert len(a.train) == len(data.train) - 500 and len(a.holdout) == 500
    np.testing.assert_array_equal(a.holdout, b.holdout)
    rows = {row.tobytes() for row in data.train}
    assert {row.tobytes() for row in a.train} | {row.tobytes() for row in a.holdout} == rows
    assert not {row.tobytes() for row in a.train} & {row.tobytes() for row in a.holdout}
    assert not np.array_equal(hold_out(data, 500, seed=1).holdout, a.holdout)
    with pytest.raises(InputError, match="expected --holdout 0 or at least 500"):
        TrainConfig(holdout=100)
    with pytest.raises(InputError, match="expected --holdout below the 1617 training images"):
        hold_out(data, 5000, seed=0)
    run = fit(TrainConfig(hidden=(8,), latent_dim=2, epochs=1, holdout=500, threads=1), tmp_path / "r", quiet=True)
    assert run.record["data"]["holdout_images"] == 500 and run.record["data"]["train_images"] == 1117
