"""The VQ-VAE's quantizer: nearest codes by matrix products, the moving-average codebook, dead-code
restarts, straight-through gradients, and an ONNX export that picks the same codes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from vaeport.export.graphs import to_onnx
from vaeport.runtime.errors import InputError
from vaeport.train.vq import VectorQuantizerEMA


def clustered(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder-like outputs (n, 2, 1, 1) around four far-apart centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[4.0, 4.0], [-4.0, 4.0], [4.0, -4.0], [-4.0, -4.0]])
    which = torch.randint(0, 4, (n,), generator=g)
    points = centres[which] + 0.1 * torch.randn(n, 2, generator=g)
    return points[:, :, None, None], centres


def test_nearest_codes_match_brute_force() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(16, 8).eval()
    z = torch.randn(3, 8, 5, 5)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    brute = torch.cdist(flat, vq.codebook).argmin(1).reshape(3, 5, 5)
    assert torch.equal(vq.nearest(z), brute)
    assert torch.equal(vq.lookup(vq.nearest(z)).permute(0, 2, 3, 1).reshape(-1, 8), vq.codebook[brute.reshape(-1)])


def test_the_moving_averages_find_the_clusters_and_restarts_revive_dead_codes() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(8, 2, decay=0.9).train()
    vq.codebook.fill_(50.0)  # every code far from the data: all but one are dead at the start
    vq.code_sum.fill_(50.0)
    g = torch.Generator().manual_seed(1)
    for step in range(300):
        out = vq(clustered(seed=step)[0], g)
    centres = clustered()[1]
    error = torch.cdist(centres, vq.codebook).min(1).values
    assert error.max() < 0.3  # each cluster has a code at its centre
    assert out.perplexity > 3.5  # and the four clusters are all in use


def test_restarts_are_reproducible_from_the_generator() -> None:
    codebooks = []
    for _ in range(2):
        torch.manual_seed(0)
        vq = VectorQuantizerEMA(8, 2, dead_below=0.5).train()
        g = torch.Generator().manual_seed(7)
        for step in range(20):
            vq(clustered(seed=step)[0], g)
        codebooks.append(vq.codebook.clone())
    assert torch.equal(codebooks[0], codebooks[1])


def test_gradients_pass_straight_through_and_the_commitment_pulls_toward_the_code() -> None:
    vq = VectorQuantizerEMA(4, 2).eval()
    z = torch.randn(2, 2, 3, 3, requires_grad=True)
    out = vq(z)
    out.z_q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert torch.allclose(out.z_q, vq.lookup(out.codes))
    with torch.no_grad():
        assert float(out.commitment) == pytest.approx(float(((z - vq.lookup(out.codes)) ** 2).mean()))


def test_codebooks_below_two_codes_are_refused() -> None:
    with pytest.raises(InputError, match="expected a codebook of at least 2 codes, got 1"):
        VectorQuantizerEMA(1, 4)


class Codes(nn.Module):
    def __init__(self, vq: VectorQuantizerEMA) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vq.nearest(z)


class Vectors(nn.Module):
    def __init__(self, vq: VectorQuantizerEMA) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vq.lookup(codes)


def test_the_quantizer_exports_to_onnx_and_picks_the_same_codes() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(32, 4).eval()
    z = torch.randn(6, 4, 7, 7)
    graph = to_onnx(Codes(vq), (z[:2],), ("z",), ("codes",), 18)
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    codes = session.run(None, {"z": z.numpy()})[0]
    assert codes.dtype == np.int64 and np.array_equal(codes, vq.nearest(z).numpy())
    lookup = ort.InferenceSession(
        to_onnx(Vectors(vq), (vq.nearest(z[:2]),), ("codes",), ("z_q",), 18), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(lookup.run(None, {"codes": codes})[0], vq.lookup(vq.nearest(z)).numpy(), atol=1e-6)
