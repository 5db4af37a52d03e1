"""Configuration dataclasses; saved in every checkpoint and rebuilt with `ModelConfig(**d)`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vaeport.runtime.errors import InputError

ARCHS = ("mlp", "conv")
KINDS = ("vae", "ae")
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = ("relu", "leaky_relu", "silu")
LR_SCHEDULES = ("constant", "cosine")
OBJECTIVES = ("elbo", "iwae", "iwae-dreg")
DEFAULT_HIDDEN = {"mlp": (400,), "conv": (32, 64, 128)}


@dataclass
class ModelConfig:
    image_shape: tuple[int, int, int]  # (C, H, W) of the training images
    latent_dim: int = 20  # D, the size of z
    arch: str = "mlp"  # "mlp" | "conv"
    hidden: tuple[int, ...] = (400,)  # mlp: hidden widths; conv: channels per downsampling stage
    kind: str = "vae"  # "vae" (variational) | "ae" (plain autoencoder baseline)
    likelihood: str = "bernoulli"  # p(x|z): "bernoulli" | "gaussian" (learned global scale)
    activation: str = "relu"  # ReLU/LeakyReLU fuse with Conv/Gemm in ONNX Runtime; SiLU does not
    depth: int = 1  # conv: 3x3 convs per stage (1 = just the strided / upsampling one)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # type: ignore[assignment]
        self.hidden = tuple(int(v) for v in self.hidden)
        check_choice("arch", self.arch, ARCHS)
        check_choice("model", self.kind, KINDS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("activation", self.activation, ACTIVATIONS)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise InputError(f"expected image_shape (C, H, W) of positive sizes, got {self.image_shape}")
        if self.latent_dim < 1:
            raise InputError(f"expected --latent-dim of at least 1, got {self.latent_dim}")
        if self.depth < 1:
            raise InputError(f"expected --depth of at least 1, got {self.depth}")
        if not self.hidden or min(self.hidden) < 1:
            raise InputError(f"expected --hidden of positive sizes, got {self.hidden}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainConfig:
    dataset: str = "digits"  # digits | fashion-mnist | mnist | folder:PATH | npy:PATH
    data_dir: str | None = None  # where IDX files are looked for first
    image_size: int | None = None  # folder: resize to this square size
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # Adam learning rate
    lr_schedule: str = "constant"  # "constant" | "cosine" (to 0 over all steps)
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 is the true ELBO
    objective: str = "elbo"  # "elbo" | "iwae" (importance-weighted bound, `samples` samples) | "iwae-dreg"
    samples: int = 1  # posterior samples per image for the IWAE objective
    kl_warmup_epochs: float = 0.0  # KL weight ramps linearly 0 -> beta over these epochs
    seed: int = 0
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    device: str = "cpu"  # "cpu" | "cuda"
    eval_batch_size: int = 1000
    model: ModelConfig = field(default_factory=lambda: ModelConfig((1, 8, 8)))

    def __post_init__(self) -> None:
        check_choice("lr-schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("objective", self.objective, OBJECTIVES)
        if self.samples < 1:
            raise InputError(f"expected --samples of at least 1, got {self.samples}")
        if self.epochs < 1:
            raise InputError(f"expected --epochs of at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"expected --batch-size of at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise InputError(f"expected --lr > 0, got {self.lr}")
        if self.beta < 0:
            raise InputError(f"expected --beta >= 0, got {self.beta}")
        if self.kl_warmup_epochs < 0:
            raise InputError(f"expected --kl-warmup-epochs >= 0, got {self.kl_warmup_epochs}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "model"}
        return cls(**values, model=ModelConfig.from_dict(data["model"]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"expected {name} to be one of {', '.join(choices)}, got {value!r}")
