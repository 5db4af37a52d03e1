"""The model folders shipped in models/ load, verify their hashes and produce images (torch-free)."""

import json
from pathlib import Path

import numpy as np
import pytest

from vaeport.runtime import VAE
from vaeport.runtime.errors import InputError
from vaeport.runtime.manifest import verify_folder

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if (p / "vae.json").is_file()) if MODELS.is_dir() else []


@pytest.mark.skipif(not SHIPPED, reason="no model folder has been shipped yet")
@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_loads_and_samples(folder):
    manifest = verify_folder(folder)
    assert (folder / "MODEL_CARD.md").is_file()
    # a few MB: a flow prior's three graphs each carry the flow's weights (11 MB with fp16 copies)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 12 * 2**20
    for variant in manifest.variants:
        vae = VAE.load(folder, device="cpu", variant=variant)
        images = vae.sample(8, seed=0, label=0 if vae.conditional else None)
        assert images.shape == (8, *vae.image_shape) and np.isfinite(images).all()
    report = json.loads((folder / "vae.json").read_text())["parity"]
    assert all(section["passed"] for section in report.values())


V1_FOLDERS = ("fashion-mnist", "fashion-mnist-ae", "fashion-mnist-2d")


@pytest.mark.parametrize("name", V1_FOLDERS)
def test_version_1_folders_keep_loading(name):
    """The folders shipped before format_version 2 stay as they were written and load as
    unconditional models: no label is taken, and one is refused."""
    folder = MODELS / name
    manifest = json.loads((folder / "vae.json").read_text())
    assert manifest["format_version"] == 1 and "classes" not in manifest
    vae = VAE.load(folder, device="cpu")
    assert vae.classes is None and not vae.conditional
    images = vae.sample(4, seed=0)
    assert images.shape == (4, 1, 28, 28) and np.isfinite(images).all()
    with pytest.raises(InputError, match="this model is unconditional"):
        vae.sample(4, seed=0, label=1)


CVAE = MODELS / "fashion-mnist-cvae"


@pytest.mark.skipif(not (CVAE / "vae.json").is_file(), reason="the conditional model is not shipped")
def test_docs_conditional_snippet_runs_on_the_shipped_model():
    """docs/conditional.md's code block, run as written (its imports included): sneakers are drawn,
    the grid has every class, and the unlabelled score names a class."""
    page = (MODELS.parent / "docs" / "conditional.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/conditional.md", "exec"), namespace)
    vae, x, grid = namespace["vae"], namespace["x"], namespace["grid"]
    assert vae.classes[7] == "Sneaker" and x.shape == (16, 1, 28, 28) and grid.shape == (100, 1, 28, 28)
    scores = vae.score(x[:4])
    assert set(scores["label"].tolist()) <= set(range(10)) and np.isfinite(scores["nll"]).all()
