"""The autoregressive prior over code grids: causal over whole grids, and its cached one-step form
gives the same logits position by position; inverse-CDF draws from given uniforms."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from vaeport.export.graphs import to_onnx
from vaeport.runtime.errors import InputError
from vaeport.train.ar_prior import CausalTransformerPrior, draw, sample_codes


def prior(num_classes: int = 0) -> CausalTransformerPrior:
    torch.manual_seed(0)
    return CausalTransformerPrior(16, (3, 4), num_classes=num_classes, width=32, layers=2, heads=4).eval()


def codes(n: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 16, (n, 3, 4), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("t", [0, 5, 11])
def test_changing_codes_at_and_after_a_position_never_changes_its_logits(t: int) -> None:
    model, a = prior(), codes()
    b = a.reshape(5, -1).clone()
    b[:, t:] = (b[:, t:] + 7) % 16
    with torch.no_grad():
        before, after = model(a).reshape(5, 12, 16), model(b.reshape(5, 3, 4)).reshape(5, 12, 16)
    assert torch.equal(before[:, : t + 1], after[:, : t + 1])
    if t < 11:
        assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])


@pytest.mark.parametrize("num_classes", [0, 3])
def test_the_cached_step_gives_the_whole_grids_logits(num_classes: int) -> None:
    model, grid = prior(num_classes), codes()
    y = torch.tensor([0, 1, 2, 1, 0]) if num_classes else None
    with torch.no_grad():
        whole = model(grid, y).reshape(5, 12, 16)
        past = model.empty_cache(5)
        assert len(past) == 4 and past[0].shape == (5, 4, 12, 8)  # a key and a value buffer per layer
        for buffer in past:
            buffer.normal_()  # what the buffers hold beyond the positions seen must not matter
        token = torch.full((5,), 16)
        for t in range(12):
            logits, new = model.step(token, y, torch.tensor([t]), past)
            torch.testing.assert_close(logits, whole[:, t], rtol=1e-4, atol=1e-5)
            for buffer, value in zip(past, new, strict=True):
                buffer[:, :, t] = value
            token = grid.reshape(5, -1)[:, t]


def test_draws_follow_the_uniforms_and_the_temperature() -> None:
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]]))
    picks = [int(draw(logits, torch.tensor([u]))) for u in (0.05, 0.1, 0.29, 0.31, 0.99)]
    assert picks == [0, 1, 1, 2, 2]
    cold = draw(logits.repeat(1000, 1), torch.rand(1000, generator=torch.Generator().manual_seed(0)), temperature=0.05)
    assert (cold == 2).all()


def test_sampling_is_a_function_of_the_uniforms() -> None:
    model = prior(num_classes=3)
    u = torch.rand(4, 12, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2, 2])
    first, again = sample_codes(model, u, y), sample_codes(model, u, y)
    assert torch.equal(first, again) and first.shape == (4, 3, 4)
    assert not torch.equal(first, sample_codes(model, u, torch.tensor([1, 2, 0, 0])))


def test_labels_must_match_the_prior() -> None:
    with pytest.raises(InputError, match="expected a label y for a class-conditional prior"):
        prior(num_classes=3)(codes())
    with pytest.raises(InputError, match="expected no label for an unconditional prior"):
        prior()(codes(), torch.zeros(5, dtype=torch.int64))


class Scores(torch.nn.Module):
    def __init__(self, model: CausalTransformerPrior) -> None:
        super().__init__()
        self.model = model

    def forward(self, grid: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.model(grid, y)


def test_the_whole_grid_prior_exports_to_onnx() -> None:
    model, grid, y = prior(num_classes=3), codes(), torch.tensor([0, 1, 2, 1, 0])
    graph = to_onnx(Scores(model), (grid[:2], y[:2]), ("codes", "y"), ("logits",), 18)
    got = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(
        None, {"codes": grid.numpy(), "y": y.numpy()}
    )
    with torch.no_grad():
        np.testing.assert_allclose(got[0], model(grid, y).numpy(), rtol=1e-4, atol=1e-5)
