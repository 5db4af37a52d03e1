"""The VQ-VAE's autoencoder (van den Oord et al. 2017): a conv encoder to a grid of vectors, the
EMA quantizer (train/vq.py) to a grid of codebook indices, and a conv decoder from the codes'
vectors. Its loss is the reconstruction alone plus the commitment term: the decoder is trained
only to reconstruct, so it is sharp, and what is random lives in a separately learned prior over
the code grid.

The encoder halves the image until both sides are at most 7 (28 x 28 -> a 7 x 7 grid), as the
VAE's conv encoder does (train/conv.py), and the decoder is that encoder's mirror.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaeport.train.ar_prior import CausalTransformerPrior
from vaeport.train.config import ModelConfig
from vaeport.train.conv import stage_channels, stage_sizes
from vaeport.train.layers import activation
from vaeport.train.loss import reconstruction_nll
from vaeport.train.vq import Quantized, VectorQuantizerEMA


class GridEncoder(nn.Module):
    """x (N, C, H, W) -> z_e (N, code_dim, h, w): strided 3x3 convs, then a 1x1 conv to the codes' width."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: tuple[int, ...], code_dim: int, act: str) -> None:
        super().__init__()
        c, h, w = image_shape
        channels = stage_channels(hidden, len(stage_sizes(h, w)) - 1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(act)]
        layers += [nn.Conv2d(channels[-1], channels[-1], 3, padding=1), activation(act)]
        layers.append(nn.Conv2d(channels[-1], code_dim, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class GridDecoder(nn.Module):
    """z_q (N, code_dim, h, w) -> logits (N, C, H, W): a 3x3 conv at the grid, then nearest upsample
    + 3x3 conv per stage, the last one sub-pixel (as train/conv.py's decoder)."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: tuple[int, ...], code_dim: int, act: str) -> None:
        super().__init__()
        c, h, w = image_shape
        self.sizes = stage_sizes(h, w)
        channels = stage_channels(hidden, len(self.sizes) - 1)
        self.bottom = nn.Sequential(nn.Conv2d(code_dim, channels[-1], 3, padding=1), activation(act))
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1) for c_in, c_out in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )
        self.to_pixels = nn.Conv2d(channels[0], 4 * c, 3, padding=1)
        self.act = activation(act)

    def forward(self, z_q: torch.Tensor) -> torch.Tensor:
        h = self.bottom(z_q)
        for conv, size in zip(self.convs, self.sizes[-2:0:-1], strict=True):
            h = self.act(conv(F.interpolate(h, size=size, mode="nearest")))
        h = F.pixel_shuffle(self.to_pixels(h), 2)
        height, width = self.sizes[0]
        return h[:, :, :height, :width]


class VQAutoencoder(nn.Module):
    """Encoder, quantizer and decoder of a VQ-VAE; `forward` gives the decoder's logits and what
    the quantizer made of the batch."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        hidden: tuple[int, ...] = (32, 64),
        codebook_size: int = 512,
        code_dim: int = 64,
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.encoder = GridEncoder(image_shape, hidden, code_dim, act)
        self.quantizer = VectorQuantizerEMA(codebook_size, code_dim)
        self.decoder = GridDecoder(image_shape, hidden, code_dim, act)
        self.grid = stage_sizes(*image_shape[1:])[-1]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, Quantized]:
        quantized = self.quantizer(self.encoder(x), generator)
        return self.decoder(quantized.z_q), quantized

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> their code grids (N, h, w) int64."""
        return self.quantizer.nearest(self.encoder(x))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code grids (N, h, w) -> decoder logits (N, C, H, W)."""
        return self.decoder(self.quantizer.lookup(codes))


def vq_loss(
    model: VQAutoencoder,
    x: torch.Tensor,
    commitment: float = 0.25,
    likelihood: str = "bernoulli",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Quantized]:
    """(loss, reconstruction NLL in nats per image, the quantizer's output): the mean
    reconstruction NLL plus `commitment` times the commitment term summed over each image's
    code vectors (so both are per image, whatever the grid size)."""
    logits, quantized = model(x, generator)
    recon = reconstruction_nll(logits, x, likelihood).mean()
    per_image = quantized.commitment * (quantized.z_q[0].numel())
    return recon + commitment * per_image, recon, quantized


class VQVAE(nn.Module):
    """A VQ-VAE as vaeport trains and exports it: the autoencoder (stage one) and the autoregressive
    prior over its code grid (stage two, class-conditional for a conditional model)."""

    variational = False  # no posterior density: the codes are a deterministic function of x

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.autoencoder = VQAutoencoder(
            config.image_shape, config.hidden, config.codebook_size, config.latent_dim, config.activation
        )
        self.prior = CausalTransformerPrior(
            config.codebook_size,
            self.autoencoder.grid,
            config.num_classes,
            config.prior_width,
            config.prior_layers,
            config.prior_heads,
        )

    @property
    def conditional(self) -> bool:
        """The prior takes the class; the encoder and the decoder never do."""
        return self.config.conditional

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.autoencoder.grid)  # type: ignore[return-value]

    def scale(self) -> None:
        """No Gaussian likelihood scale (the VAE's interface)."""
        return None


class CodesEncoder(nn.Module):
    """The encoder graph: images -> code grids (N, h, w) int64."""

    def __init__(self, autoencoder: VQAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(x)


class CodesDecoder(nn.Module):
    """The decoder graph: code grids -> Bernoulli means (N, C, H, W) in [0, 1]."""

    def __init__(self, autoencoder: VQAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.autoencoder.decode(codes))


class GridPrior(nn.Module):
    """The prior graph: logits (N, h, w, K) of whole grids; the conditional one takes y (N,)."""

    def __init__(self, prior: CausalTransformerPrior) -> None:
        super().__init__()
        self.prior = prior

    def forward(self, codes: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.prior(codes, y)


class StepPrior(nn.Module):
    """The prior_step graph of an unconditional prior: (token, position, past_k_0, past_v_0, ...) ->
    (logits, k_0, v_0, ...), train/ar_prior.py's `step`."""

    def __init__(self, prior: CausalTransformerPrior) -> None:
        super().__init__()
        self.prior = prior

    def forward(self, token: torch.Tensor, position: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, new = self.prior.step(token, None, position, past)
        return (logits, *new)


class ConditionalStepPrior(StepPrior):
    """The prior_step graph of a class-conditional prior: y (N,) after the token."""

    def forward(  # type: ignore[override]
        self, token: torch.Tensor, y: torch.Tensor, position: torch.Tensor, *past: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        logits, new = self.prior.step(token, y, position, past)
        return (logits, *new)
