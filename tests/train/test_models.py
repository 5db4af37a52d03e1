import re

import pytest
import torch

from vaeport.runtime.errors import InputError
from vaeport.train.config import ModelConfig, TrainConfig
from vaeport.train.conv import stage_sizes
from vaeport.train.vae import VAE, DecoderImage

SHAPES = [(1, 8, 8), (1, 28, 28), (1, 30, 30), (3, 32, 32), (1, 64, 64), (3, 17, 40)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_shapes(shape, arch, kind):
    hidden = (32,) if arch == "mlp" else (8, 16)
    model = VAE(ModelConfig(shape, latent_dim=5, arch=arch, hidden=hidden, kind=kind, depth=2 if kind == "ae" else 1))
    x = torch.rand(3, *shape)
    with torch.no_grad():
        logits, mean, log_var = model(x, generator=torch.Generator().manual_seed(0))
        image = DecoderImage(model.decoder)(mean)
    assert logits.shape == (3, *shape)
    assert mean.shape == (3, 5)
    assert (log_var is None) == (kind == "ae")
    assert image.shape == (3, *shape) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0


@pytest.mark.parametrize(
    ("side", "expected"),
    [(8, [8, 4]), (28, [28, 14, 7]), (30, [30, 15, 8, 4]), (32, [32, 16, 8, 4]), (64, [64, 32, 16, 8, 4])],
)
def test_stage_sizes(side, expected):
    assert [h for h, _ in stage_sizes(side, side)] == expected


def test_conv_channels_repeat_last():
    model = VAE(ModelConfig((1, 64, 64), arch="conv", hidden=(4, 8)))
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 8, 8]


def test_log_var_is_clamped():
    model = VAE(ModelConfig((1, 8, 8), hidden=(4,)))
    with torch.no_grad():
        model.encoder.head.linear.bias[4:].fill_(100.0)
    _, log_var = model.encode(torch.rand(2, 1, 8, 8))
    assert float(log_var.detach().max()) == 8.0


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = VAE(ModelConfig((1, 8, 8), arch="conv", hidden=(4,)))
    torch.manual_seed(3)
    b = VAE(ModelConfig((1, 8, 8), arch="conv", hidden=(4,)))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "expected --latent-dim >= 1, got 0"),
        ({"arch": "rnn"}, "expected --arch to be one of mlp, conv, got 'rnn'"),
        ({"hidden": ()}, "expected --hidden of positive sizes"),
        ({"hidden": "a,b"}, "expected --hidden as comma-separated integers"),
        ({"epochs": 2.5}, "expected --epochs to be an integer, got 2.5"),
        ({"lr": 0.0}, "expected --lr > 0, got 0.0"),
        ({"lr": float("nan")}, "expected --lr to be a finite number, got nan"),
        ({"seed": -1}, "expected --seed >= 0, got -1"),
        ({"kind": "gan"}, "expected --model to be one of vae, ae, vqvae, got 'gan'"),
        ({"skip_bad_images": "yes"}, "expected --skip-bad-images to be true or false"),
        ({"dataset": None}, "expected --dataset to be set, got None"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(InputError, match=re.escape(message)):
        TrainConfig(**kwargs)


def test_train_config_round_trip_and_defaults():
    config = TrainConfig(arch="conv", hidden="8,16", latent_dim=7, kind="ae")
    assert config.hidden == (8, 16)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig(arch="conv").hidden == (32, 64, 128) and TrainConfig().hidden == (400,)
    # vaeport 0.1's run folders nested the model settings
    old = {"dataset": "digits", "epochs": 3, "model": {"image_shape": [1, 8, 8], "latent_dim": 5, "arch": "mlp"}}
    assert TrainConfig.from_dict(old) == TrainConfig(epochs=3, latent_dim=5)
    assert config.model_config((1, 8, 8)) == ModelConfig((1, 8, 8), 7, "conv", (8, 16), "ae")


def test_config_round_trip():
    config = ModelConfig((3, 32, 32), latent_dim=7, arch="conv", hidden=(8, 16), kind="ae")
    assert ModelConfig.from_dict(config.to_dict()) == config
