"""An autoregressive prior over a VQ-VAE's code grid: a small causal transformer (GPT-style, pre-norm)
over the grid in raster order, optionally conditioned on the class.

Two ways to run the same weights:

- `forward(codes, y)` scores whole grids: logits (N, h, w, K) where position t sees only the codes
  before it (the start token, then codes 0..t-1), for training and for `score`;
- `step(token, y, position, past)` computes one position for sampling: the token drawn at the
  previous position goes in, the logits of this position and this position's keys and values
  (every layer) come out. The caller keeps the keys and values of the positions so far in
  fixed-size buffers, one (N, heads, T, head_dim) pair per layer (`past` = [k_0, v_0, k_1, ...]),
  and passes them back; positions at and after `position` are masked, so the buffers' unused tail
  never matters. No cache update happens inside the graph, so it exports to ONNX with static
  shapes, and a sampling step costs one position's work instead of the whole grid's. One buffer
  per layer, not one stacked tensor: slicing a layer out of a stack copies it in ONNX Runtime, a
  copy of the whole cache at every step (a quarter of the sampling time when measured).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaeport.runtime.errors import InputError


class Block(nn.Module):
    """Pre-norm causal self-attention and MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def split(self, t: torch.Tensor) -> torch.Tensor:
        """(N, T, width) -> (N, heads, T, head_dim)."""
        n, length, _ = t.shape
        return t.reshape(n, length, self.heads, self.head_dim).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Softmax attention of q (N, H, Tq, d) over k, v (N, H, Tk, d) where `mask` (Tq, Tk) is True."""
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    def merge(self, t: torch.Tensor) -> torch.Tensor:
        n, _, length, _ = t.shape
        return t.transpose(1, 2).reshape(n, length, self.heads * self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        x = x + self.out(self.merge(self.attend(self.split(q), self.split(k), self.split(v), causal)))
        return x + self.mlp(self.norm2(x))

    def step(
        self, x: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, seen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One position x (N, 1, width) against the buffers (N, H, T, d) where `seen` (T,) is True:
        (output, this position's key and value (N, H, d)). The buffers are only read: the scores
        of the past and of the position itself are joined (T + 1 numbers a row), never the
        buffers, which would copy the whole cache at every step."""
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q, k, v = self.split(q), self.split(k), self.split(v)  # (N, H, 1, d)
        scale = 1.0 / math.sqrt(self.head_dim)
        past = (q @ past_k.transpose(-1, -2)) * scale  # (N, H, 1, T)
        past = past.masked_fill(~seen, float("-inf"))
        own = (q * k).sum(-1, keepdim=True) * scale  # (N, H, 1, 1)
        weights = torch.softmax(torch.cat([past, own], dim=-1), dim=-1)
        attended = weights[..., :-1] @ past_v + weights[..., -1:] * v
        x = x + self.out(self.merge(attended))
        return x + self.mlp(self.norm2(x)), k[:, :, 0], v[:, :, 0]


class CausalTransformerPrior(nn.Module):
    """p(codes [| y]) = prod_t p(code_t | codes before t [, y]) over a (h, w) grid of K codes."""

    def __init__(
        self,
        num_codes: int,
        grid: tuple[int, int],
        num_classes: int = 0,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if width % heads:
            raise InputError(f"expected the prior's width to be a multiple of its {heads} heads, got {width}")
        self.num_codes, self.grid, self.num_classes = num_codes, tuple(grid), num_classes
        self.length = grid[0] * grid[1]
        self.tokens = nn.Embedding(num_codes + 1, width)  # index num_codes: the start token
        self.positions = nn.Parameter(torch.zeros(self.length, width))
        self.classes = nn.Embedding(num_classes, width) if num_classes else None
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        nn.init.normal_(self.positions, std=0.02)

    @property
    def cache_shape(self) -> tuple[int, int, int, int]:
        """(layers, heads, T, head_dim): L pairs of key and value buffers of (heads, T, head_dim) per image."""
        block = self.blocks[0]
        return (len(self.blocks), block.heads, self.length, block.head_dim)

    def embed(self, tokens: torch.Tensor, y: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        x = self.tokens(tokens) + self.positions[positions]
        if self.classes is not None:
            if y is None:
                raise InputError("expected a label y for a class-conditional prior, got none")
            x = x + self.classes(y).unsqueeze(1)
        elif y is not None:
            raise InputError("expected no label for an unconditional prior, got one")
        return x

    def forward(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, h, w, K) of every position of the code grids (N, h, w) given those before it."""
        n = codes.shape[0]
        flat = codes.reshape(n, self.length)
        start = torch.full((n, 1), self.num_codes, dtype=flat.dtype, device=flat.device)
        tokens = torch.cat([start, flat[:, :-1]], dim=1)  # position t reads the code at t - 1
        x = self.embed(tokens, y, torch.arange(self.length, device=codes.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)).reshape(n, *self.grid, self.num_codes)

    def step(
        self, token: torch.Tensor, y: torch.Tensor | None, position: torch.Tensor, past: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N, K) at `position` (a (1,) int64 tensor) from the previous code `token` (N,)
        (the start token num_codes at position 0) and the buffers of the positions before it
        (`past`: [k_0, v_0, k_1, v_1, ...], each (N, H, T, d)); also this position's keys and
        values [k_0, v_0, ...] (each (N, H, d)) for the caller to store."""
        x = self.embed(token.unsqueeze(1), y, position)
        seen = torch.arange(self.length, device=token.device) < position
        new: list[torch.Tensor] = []
        for layer, block in enumerate(self.blocks):
            x, k, v = block.step(x, past[2 * layer], past[2 * layer + 1], seen)
            new += [k, v]
        return self.head(self.norm(x))[:, 0], new

    def empty_cache(self, n: int) -> list[torch.Tensor]:
        """Zeroed buffers [k_0, v_0, ...] for n grids."""
        layers, heads, length, head_dim = self.cache_shape
        return [torch.zeros(n, heads, length, head_dim) for _ in range(2 * layers)]

    def nll(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(codes [| y]) in nats per grid (N,)."""
        logits = self.forward(codes, y)
        return (
            F.cross_entropy(logits.reshape(-1, self.num_codes), codes.reshape(-1), reduction="none")
            .reshape(codes.shape[0], -1)
            .sum(1)
        )


def draw(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Codes (N,) from logits (N, K) and one uniform in [0, 1) per row: the first code whose
    cumulative probability exceeds the uniform (inverse-CDF sampling, so any runtime given the same
    uniforms and logits draws the same codes); temperature 0 takes the most probable code."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cumulative = torch.cumsum(probs, dim=-1)
    codes = torch.searchsorted(cumulative, uniforms.double().contiguous().unsqueeze(1), right=True).squeeze(1)
    return codes.clamp(max=logits.shape[-1] - 1)


@torch.no_grad()
def sample_codes(
    prior: CausalTransformerPrior, uniforms: torch.Tensor, y: torch.Tensor | None = None, temperature: float = 1.0
) -> torch.Tensor:
    """Code grids (N, h, w) drawn position by position with the cached step, one uniform (N, T) per
    position."""
    n = uniforms.shape[0]
    past = prior.empty_cache(n)
    token = torch.full((n,), prior.num_codes, dtype=torch.int64)
    codes = torch.empty(n, prior.length, dtype=torch.int64)
    for t in range(prior.length):
        logits, new = prior.step(token, y, torch.tensor([t]), past)
        for buffer, value in zip(past, new, strict=True):
            buffer[:, :, t] = value
        token = codes[:, t] = draw(logits, uniforms[:, t], temperature)
    return codes.reshape(n, *prior.grid)
