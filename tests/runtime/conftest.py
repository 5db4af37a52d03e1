import pytest

from vaeport.export import export

from ..helpers import make_run


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A small conv VAE on digits, exported with all variants."""
    root = tmp_path_factory.mktemp("rt")
    run = make_run(root / "run", arch="conv", hidden=(8, 16), latent_dim=4, epochs=2)
    return export(run, root / "model", fp16=True, int8=True, require_variants=True)


@pytest.fixture(scope="session")
def ae_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt-ae")
    run = make_run(root / "run", arch="mlp", kind="ae", hidden=(16,), latent_dim=3)
    return export(run, root / "model")


def copy_folder(src, dst):
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).write_bytes(item.read_bytes())
    return dst
