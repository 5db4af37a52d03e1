"""The VQ-VAE autoencoder on real digits: it learns to reconstruct through a code grid that uses
its codebook, and its encoder (x -> codes) and decoder (codes -> x) export to ONNX."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from vaeport.export.graphs import to_onnx
from vaeport.train.datasets import load_dataset
from vaeport.train.vqvae import VQAutoencoder, vq_loss


class Encode(torch.nn.Module):
    def __init__(self, model: VQAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


class Decode(torch.nn.Module):
    def __init__(self, model: VQAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decode(codes))


def trained(steps: int = 400) -> tuple[VQAutoencoder, torch.Tensor]:
    torch.manual_seed(0)
    data = load_dataset("digits", seed=0)
    train, test = torch.from_numpy(data.train), torch.from_numpy(data.test)
    model = VQAutoencoder((1, 8, 8), hidden=(32,), codebook_size=64, code_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        batch = train[torch.randint(0, len(train), (64,), generator=g)]
        loss, _, _ = vq_loss(model, batch, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), test


def test_it_reconstructs_digits_through_a_used_codebook() -> None:
    model, test = trained()
    with torch.no_grad():
        codes = model.encode(test)
        recon = torch.sigmoid(model.decode(codes))
        logits, quantized = model(test)
    assert codes.shape == (len(test), 4, 4) and codes.dtype == torch.int64
    assert torch.equal(quantized.codes, codes) and torch.allclose(torch.sigmoid(logits), recon)
    mse = float(((recon - test) ** 2).mean())
    baseline = float(((test.mean(0, keepdim=True) - test) ** 2).mean())
    assert mse < 0.25 * baseline  # far better than the mean digit
    assert len(torch.unique(codes)) > 32  # more than half of the 64 codes in use


def test_encoder_and_decoder_export_and_agree_with_torch() -> None:
    model, test = trained(steps=50)
    x = test[:10]
    encoder = ort.InferenceSession(
        to_onnx(Encode(model), (x[:2],), ("x",), ("codes",), 18), providers=["CPUExecutionProvider"]
    )
    codes = encoder.run(None, {"x": x.numpy()})[0]
    assert np.array_equal(codes, model.encode(x).numpy())
    decoder = ort.InferenceSession(
        to_onnx(Decode(model), (model.encode(x[:2]),), ("codes",), ("x",), 18), providers=["CPUExecutionProvider"]
    )
    with torch.no_grad():
        want = torch.sigmoid(model.decode(torch.from_numpy(codes))).numpy()
    np.testing.assert_allclose(decoder.run(None, {"codes": codes})[0], want, atol=1e-5)
