"""Training configuration: `TrainConfig` is the one definition of every setting, its default and its
allowed values. `vae-train`'s options are generated from it (train/cli.py), config.json and the
checkpoints store it, and `ModelConfig` (what the network needs) is derived from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from vaeport.runtime.distributions import DEFAULT_PRIOR, PRIORS
from vaeport.runtime.errors import InputError
from vaeport.runtime.families import FAMILIES
from vaeport.train.settings import check_fields, option_name, setting

ARCHS = ("mlp", "conv")
KINDS = tuple(FAMILIES)  # runtime/families.py: one entry per model family
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = ("relu", "leaky_relu", "silu")
LR_SCHEDULES = ("constant", "cosine", "wsd")
PRECISIONS = ("fp32", "bf16")
OBJECTIVES = ("elbo", "iwae", "iwae-dreg", "btcvae", "capacity")
SINGLE_SAMPLE = ("elbo", "btcvae", "capacity")
DEVICES = ("cpu", "cuda", "auto")
DEFAULT_HIDDEN = {"mlp": (400,), "conv": (32, 64, 128)}
VQ_DEFAULT_HIDDEN = (64, 128)  # --model vqvae: a 28 x 28 image halves twice to its 7 x 7 code grid
MIN_HOLDOUT = 500  # runtime/scoring.py: 5 images beyond a 1% false-positive threshold


@dataclass
class TrainConfig:
    """Everything that decides a training run. Same config and seed, same weights."""

    # -- data --------------------------------------------------------------------------------
    dataset: str = setting("digits", "digits | fashion-mnist | mnist | dsprites | folder:PATH | npy:PATH")
    data_dir: str | None = setting(
        None,
        "Folder searched first for IDX files (then $VAEPORT_DATA, /usr/share/datasets).",
        resumable=True,
        path=True,
    )
    image_size: int | None = setting(
        None, "folder: resize images to this square size; dsprites: render at 16, 32 or 64 (default).", minimum=1
    )
    skip_bad_images: bool = setting(
        False, "folder: skip unreadable images (and report them) instead of refusing the data set."
    )
    holdout: int = setting(
        0, "Training images kept out of training (seeded), on which export calibrates the anomaly score.", minimum=0
    )
    # -- model -------------------------------------------------------------------------------
    kind: str = setting(
        "vae",
        "vae; ae: the plain autoencoder baseline (no KL, deterministic code); vqvae: discrete codes (a conv "
        "encoder to a grid of codebook indices) with an autoregressive prior trained as a second stage.",
        choices=KINDS,
        flag="model",
    )
    prior: str = setting(
        DEFAULT_PRIOR,
        "p(z), the prior the KL pulls toward and samples come from: normal (N(0, I)) or flow (a RealNVP flow "
        "learned with the model).",
        choices=tuple(PRIORS),
    )
    flow_layers: int = setting(8, "--prior flow: affine coupling layers.", minimum=1, maximum=64)
    flow_hidden: int = setting(256, "--prior flow: width of each coupling's network.", minimum=4, maximum=4096)
    prior_of: str | None = setting(
        None,
        "--prior flow: learn only the prior of the VAE trained in this run folder (from its last.pt; its encoder and "
        "decoder stay frozen), so a trained VAE gets a learned prior without retraining. Give the run's data and "
        "model options.",
        path=True,
    )
    conditional: bool = setting(
        False,
        "Condition encoder and decoder on the class label (a conditional VAE, Sohn et al. 2015); the "
        "labels come from the data set.",
    )
    arch: str | None = setting(
        None, "Encoder/decoder architecture (default mlp; --model vqvae is conv).", choices=ARCHS
    )
    latent_dim: int = setting(20, "D, the size of z (--model vqvae: of each code vector).", minimum=1)
    hidden: tuple[int, ...] | None = setting(
        None, "mlp: hidden widths (default 400); conv: channels per stage (default 32,64,128; vqvae 64,128)."
    )
    depth: int = setting(1, "conv: 3x3 convs per stage.", minimum=1)
    activation: str = setting(
        "relu", "ReLU/LeakyReLU fuse with Conv/Gemm in ONNX Runtime; SiLU does not.", choices=ACTIVATIONS
    )
    likelihood: str = setting("bernoulli", "p(x|z); gaussian has a learned global scale.", choices=LIKELIHOODS)
    # -- objective ---------------------------------------------------------------------------
    beta: float = setting(1.0, "Weight of the KL term (beta-VAE); 1 is the true ELBO.", minimum=0)
    kl_warmup_epochs: float = setting(0.0, "Ramp the KL weight linearly from 0 over this many epochs.", minimum=0)
    objective: str = setting(
        "elbo",
        "Train on the ELBO, the importance-weighted bound (IWAE), the IWAE bound with doubly "
        "reparameterized encoder gradients (iwae-dreg), beta-TCVAE's split ELBO with --beta on the "
        "total correlation only (btcvae), or the reconstruction + --beta * |KL - C| of Burgess et al. 2018 with "
        "the allowed KL C raised from 0 to --capacity nats (capacity).",
        choices=OBJECTIVES,
    )
    capacity: float = setting(25.0, "--objective capacity: the KL, in nats, allowed at the end of the ramp.", minimum=0)
    capacity_epochs: float = setting(
        1.0, "--objective capacity: epochs over which the allowed KL rises linearly from 0 to --capacity.", minimum=0
    )
    samples: int = setting(1, "Posterior samples per image for --objective iwae and iwae-dreg.", minimum=1)
    # -- VQ-VAE (--model vqvae) --------------------------------------------------------------
    codebook_size: int = setting(512, "--model vqvae: K, the codes of the codebook.", minimum=2)
    commitment: float = setting(0.25, "--model vqvae: weight of the commitment loss |z_e - sg(z_q)|^2.", minimum=0)
    prior_epochs: int = setting(
        10, "--model vqvae: epochs of the prior's stage, after --epochs of the autoencoder's.", minimum=1,
        resumable=True,
    )
    prior_width: int = setting(128, "--model vqvae: width of the prior's causal transformer.", minimum=4)
    prior_layers: int = setting(4, "--model vqvae: transformer blocks of the prior.", minimum=1, maximum=64)
    prior_heads: int = setting(4, "--model vqvae: attention heads of the prior.", minimum=1)
    # -- optimisation ------------------------------------------------------------------------
    epochs: int = setting(10, "Epochs to train (raise it with --resume to continue).", minimum=1, resumable=True)
    batch_size: int = setting(128, "Images per step.", minimum=1)
    lr: float = setting(1e-3, "Adam learning rate.", minimum=0, exclusive_minimum=True)
    lr_schedule: str = setting(
        "constant",
        "constant, cosine (to 0 over all steps) or wsd (constant, then linearly to 0 over the last 20% of steps);"
        " a VQ-VAE: its autoencoder's.",
        choices=LR_SCHEDULES,
    )
    prior_lr_schedule: str = setting(
        "constant", "--model vqvae: the prior stage's schedule over its own steps, constant, cosine or wsd.",
        choices=LR_SCHEDULES,
    )  # fmt: skip
    prior_precision: str = setting(
        "fp32",
        "--model vqvae: the prior stage's matmuls in fp32, or in bfloat16 under torch.autocast (weights and "
        "Adam state stay fp32; about 2x faster on CPUs with AVX512-BF16 or AMX and on recent GPUs, slower elsewhere).",
        choices=PRECISIONS,
    )
    seed: int = setting(0, "Seeds the split, the initial weights, the batches and the noise.", minimum=0)
    eval_batch_size: int = setting(1000, "Test images per batch of the per-epoch evaluation.", minimum=1)
    # -- where it runs -----------------------------------------------------------------------
    threads: int | None = setting(None, "torch intra-op threads (default: torch's choice).", minimum=1, resumable=True)
    device: str = setting("cpu", "Where torch trains; auto picks cuda when available.", choices=DEVICES, resumable=True)

    def __post_init__(self) -> None:
        if self.arch is None:
            self.arch = "conv" if self.kind == "vqvae" else "mlp"
        hidden = VQ_DEFAULT_HIDDEN if self.kind == "vqvae" else DEFAULT_HIDDEN.get(self.arch, (400,))
        self.hidden = parse_hidden(self.hidden) or hidden
        check_fields(self)
        if self.kind == "vqvae":
            check_vqvae(self)
        else:
            check_not_vqvae(self)
        if self.prior_of is not None and self.prior == DEFAULT_PRIOR:
            raise InputError(
                f"expected a learned prior (--prior flow) with --prior-of, got --prior {DEFAULT_PRIOR} (it has nothing "
                "to learn)"
            )
        if self.prior_of is not None and self.objective == "iwae-dreg":
            raise InputError(
                "expected --objective elbo or iwae with --prior-of, got iwae-dreg (it reweights the encoder's "
                "gradients, and --prior-of freezes the encoder)"
            )
        if self.prior != DEFAULT_PRIOR and self.kind != "vae":
            raise InputError(
                f"expected --prior {DEFAULT_PRIOR} with --model {self.kind} (it has no KL to learn a prior through), "
                f"got --prior {self.prior}"
            )
        if self.objective in SINGLE_SAMPLE and self.samples != 1:
            raise InputError(
                f"expected --samples only with --objective iwae or iwae-dreg ({self.objective} uses one sample), "
                f"got --samples {self.samples} with --objective {self.objective}"
            )
        if self.objective == "btcvae":
            check_btcvae(self)
        check_capacity(self)
        if 0 < self.holdout < MIN_HOLDOUT:
            raise InputError(
                f"expected --holdout 0 or at least {MIN_HOLDOUT} (the anomaly score's 1% threshold needs 5 normal "
                f"images above it), got {self.holdout}"
            )

    # -- (de)serialisation ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From config.json, a checkpoint or a manifest's training section. Reads the flat form and
        the nested form of vaeport 0.1's first run folders (a `model` section); other keys are ignored."""
        flat = {**data, **data["model"]} if isinstance(data.get("model"), dict) else dict(data)
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in flat.items() if k in names}
        if known.get("objective", "elbo") == "elbo" and "samples" in known:
            known["samples"] = 1  # runs saved before --samples was refused with the ELBO: it had no effect
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["hidden"] = list(self.hidden or ())
        return record

    def model_config(self, image_shape: tuple[int, int, int], classes: tuple[str, ...] | None = None) -> ModelConfig:
        """What the network needs, for images of `image_shape` (C, H, W) and, for a conditional
        model, the data set's class names."""
        if self.conditional and not classes:
            raise InputError(
                f"--conditional needs labels, got a data set without them ({self.dataset}; folder: data needs "
                "one subfolder per class, npy:X.npy a X.labels.npy beside it)"
            )
        return ModelConfig(
            image_shape=image_shape,
            latent_dim=self.latent_dim,
            arch=self.arch,
            hidden=tuple(self.hidden or ()),
            kind=self.kind,
            prior=self.prior,
            flow_layers=self.flow_layers,
            flow_hidden=self.flow_hidden,
            codebook_size=self.codebook_size,
            prior_width=self.prior_width,
            prior_layers=self.prior_layers,
            prior_heads=self.prior_heads,
            likelihood=self.likelihood,
            activation=self.activation,
            depth=self.depth,
            classes=tuple(classes) if self.conditional and classes else (),
        )

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)


# What --model vqvae has no use for: (field, the value that means "unused", why)
VQ_UNUSED = (
    ("prior", DEFAULT_PRIOR, "its prior is the autoregressive one over the codes"),
    ("beta", 1.0, "it has no KL term to weigh"),
    ("kl_warmup_epochs", 0.0, "it has no KL term to ramp"),
    ("objective", "elbo", "it trains on reconstruction + commitment, then the prior's likelihood"),
    ("samples", 1, "its codes are deterministic"),
    ("likelihood", "bernoulli", "its bound is in Bernoulli nats"),
    ("arch", "conv", "its encoder keeps a grid"),
)


def check_vqvae(cfg: TrainConfig) -> None:
    """Options that do not apply to a VQ-VAE are refused, not ignored; the prior's width must split
    into its heads."""
    for name, unused, why in VQ_UNUSED:
        if getattr(cfg, name) != unused:
            f = next(f for f in fields(TrainConfig) if f.name == name)
            raise InputError(
                f"expected {option_name(f)} {show(unused)} with --model vqvae ({why}), got {show(getattr(cfg, name))}"
            )
    if cfg.prior_width % cfg.prior_heads:
        raise InputError(
            f"expected --prior-width to be a multiple of --prior-heads ({cfg.prior_heads}), got {cfg.prior_width}"
        )


VQ_ONLY = ("codebook_size", "commitment", "prior_epochs", "prior_width", "prior_layers", "prior_heads",
           "prior_lr_schedule", "prior_precision")  # fmt: skip


def refuse_set(cfg: TrainConfig, names: tuple[str, ...], only_with: str, given: str) -> None:
    """Options among `names` set away from their defaults are refused: they apply only `only_with`."""
    for f in fields(TrainConfig):
        if f.name in names and getattr(cfg, f.name) != f.default:
            raise InputError(
                f"expected {option_name(f)} only with {only_with}, got it ({show(getattr(cfg, f.name))}) with {given}"
            )


def check_not_vqvae(cfg: TrainConfig) -> None:
    """The VQ-VAE's own options are refused for another family, not ignored."""
    refuse_set(cfg, VQ_ONLY, "--model vqvae", f"--model {cfg.kind}")


def total_epochs(cfg: TrainConfig) -> int:
    """Epochs of every stage: a VQ-VAE's autoencoder, then its prior."""
    return cfg.epochs + (cfg.prior_epochs if cfg.kind == "vqvae" else 0)


def require_vae_with_normal_prior(cfg: TrainConfig, objective: str, why_vae: str, why_normal: str) -> None:
    """An objective built on a VAE's KL to N(0, I): refuse other models and learned priors, saying why."""
    if cfg.kind != "vae":
        raise InputError(f"expected --model vae with --objective {objective} ({why_vae}), got --model {cfg.kind}")
    if cfg.prior != DEFAULT_PRIOR:
        raise InputError(
            f"expected --prior {DEFAULT_PRIOR} with --objective {objective} ({why_normal}), got --prior {cfg.prior}"
        )


def check_btcvae(cfg: TrainConfig) -> None:
    """beta-TCVAE splits the KL to a factorised N(0, I) across a batch: a variational model with
    the normal prior and batches of at least two images."""
    require_vae_with_normal_prior(
        cfg, "btcvae", "it splits the KL", "its dimension-wise KL needs a factorised prior"
    )
    if cfg.batch_size < 2:
        raise InputError(
            "expected --batch-size of at least 2 with --objective btcvae (the total correlation is estimated "
            f"across the batch), got {cfg.batch_size}"
        )


CAPACITY_ONLY = ("capacity", "capacity_epochs")


def check_capacity(cfg: TrainConfig) -> None:
    """The capacity objective prices the KL of a VAE's posterior against the normal prior's closed
    form, instead of the KL warm-up; its options are refused with another objective."""
    if cfg.objective != "capacity":
        refuse_set(cfg, CAPACITY_ONLY, "--objective capacity", f"--objective {cfg.objective}")
        return
    require_vae_with_normal_prior(
        cfg, "capacity", "it prices the KL", "its KL is the closed form to N(0, I)"
    )
    if cfg.kl_warmup_epochs:
        raise InputError(
            "expected --kl-warmup-epochs 0 with --objective capacity (its --capacity-epochs ramp the allowed KL "
            f"instead), got {show(cfg.kl_warmup_epochs)}"
        )


def parse_hidden(value: Any) -> tuple[int, ...] | None:
    """'512,256', [512, 256] or (512, 256) -> (512, 256); None stays None (the arch's default)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(value, str) and any(not item.strip() for item in items):
        raise InputError(f"expected --hidden as comma-separated integers like 512,256, got an empty size in {value!r}")
    try:
        widths = tuple(int(v) for v in items)
        if any(isinstance(v, (bool, float)) for v in items):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"expected --hidden as comma-separated integers like 512,256, got {value!r}") from None
    if not widths or min(widths) < 1:
        raise InputError(f"expected --hidden of positive sizes, got {value!r}")
    return widths


def resumed_config(saved: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """The saved config with the `given` settings applied; only resumable ones may differ.

    Settings that equal the saved ones are accepted (re-running the same command with --resume
    works); each that differs is named with its saved and given value."""
    merged = TrainConfig.from_dict({**saved.to_dict(), **given})
    by_name = {f.name: f for f in fields(TrainConfig)}
    changed = [
        (by_name[name], getattr(saved, name), getattr(merged, name))
        for name in given
        if name in by_name and getattr(saved, name) != getattr(merged, name)
    ]
    fixed = [(f, old, new) for f, old, new in changed if not f.metadata.get("resumable")]
    if fixed:
        listed = "; ".join(f"{option_name(f)}: saved {show(old)}, given {show(new)}" for f, old, new in fixed)
        allowed = ", ".join(option_name(f) for f in fields(TrainConfig) if f.metadata.get("resumable"))
        names = ", ".join(f.name for f, _, _ in fixed)
        raise InputError(
            f"--resume continues the saved configuration, but {listed} (only {allowed} may change; "
            f"in Python: fit(..., resume=True) with TrainConfig.{names} as saved)"
        )
    return merged


def show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class ModelConfig:
    """What the network is: derived from TrainConfig and the data's image shape; saved in every
    checkpoint and rebuilt with `ModelConfig.from_dict(d)`."""

    image_shape: tuple[int, int, int]  # (C, H, W) of the training images
    latent_dim: int = 20  # D, the size of z
    arch: str = "mlp"  # "mlp" | "conv"
    hidden: tuple[int, ...] = (400,)  # mlp: hidden widths; conv: channels per downsampling stage
    kind: str = "vae"  # "vae" (variational) | "ae" (plain autoencoder baseline)
    prior: str = "normal"  # p(z) by name (train/priors.py); "normal" is N(0, I)
    flow_layers: int = 8  # prior "flow": affine coupling layers
    flow_hidden: int = 256  # prior "flow": width of each coupling's network
    codebook_size: int = 512  # vqvae: K, codes in the codebook
    prior_width: int = 128  # vqvae: the autoregressive prior's transformer width
    prior_layers: int = 4  # vqvae: its blocks
    prior_heads: int = 4  # vqvae: its attention heads
    likelihood: str = "bernoulli"  # p(x|z): "bernoulli" | "gaussian" (learned global scale)
    activation: str = "relu"  # ReLU/LeakyReLU fuse with Conv/Gemm in ONNX Runtime; SiLU does not
    depth: int = 1  # conv: 3x3 convs per stage (1 = just the strided / upsampling one)
    classes: tuple[str, ...] = ()  # conditional model: class names by label index; () = unconditional

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # type: ignore[assignment]
        self.hidden = tuple(int(v) for v in self.hidden)
        self.classes = tuple(str(v) for v in self.classes)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise InputError(f"expected image_shape (C, H, W) of positive sizes, got {self.image_shape}")

    @property
    def conditional(self) -> bool:
        return bool(self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
