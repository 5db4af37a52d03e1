"""Names fixed by the model-folder format; imported by both vaeport.export and vaeport.runtime."""

from __future__ import annotations

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
VARIANTS = ("fp32", "fp16", "int8")
MANIFEST_FILE = "vae.json"
MODEL_CARD_FILE = "MODEL_CARD.md"

FORMAT_NAME = "vaeport-model"
FORMAT_VERSION = 2  # what vae-export writes (2 adds `classes` and `inputs`: conditional models)
LEARNED_PRIOR_FORMAT_VERSION = 3  # ... for a model with a learned prior (its prior graphs; older runtimes refuse it)
VQ_FORMAT_VERSION = 4  # ... for a VQ-VAE (model.kind vqvae: discrete codes, an autoregressive prior)
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3, 4)  # what the runtime reads: every version vaeport has written

# Graph input/output names.
ENCODER_INPUT = "x"
ENCODER_OUTPUTS_VAE = ("z_mean", "z_log_var")
ENCODER_OUTPUTS_AE = ("z",)
DECODER_INPUT = "z"
DECODER_OUTPUT = "x"
LABEL_INPUT = "y"  # a conditional model's class index, int64 [N], into both graphs
NOISE_INPUT = "eps"  # prior_sample: the runtime's seeded noise [N,D]
PRIOR_SAMPLE_OUTPUT = "z"
LOG_PROB_OUTPUT = "log_prob"  # prior_log_prob: log p(z) [N]
# A VQ-VAE's graphs (runtime/vqvae.py)
CODES = "codes"  # code grids [N,h,w] int64: the encoder's output, the decoder's and the prior's input
LOGITS_OUTPUT = "logits"  # prior: [N,h,w,K] at every position; prior_step: [N,K] at one
TOKEN_INPUT = "token"  # prior_step: the code drawn at the previous position [N] (K: the start token)
POSITION_INPUT = "position"  # prior_step: the position computed [1] int64
PAST_PREFIX = "past_"  # prior_step: past_k_0, past_v_0, ...: each layer's keys and values so far [N,H,T,d]


def step_outputs(layers: int) -> list[str]:
    """prior_step's key/value outputs, this position's [N,H,d] per layer: k_0, v_0, k_1, ..."""
    return [f"{kind}_{layer}" for layer in range(layers) for kind in ("k", "v")]


def past_inputs(layers: int) -> list[str]:
    """prior_step's buffer inputs, in the order of its outputs: past_k_0, past_v_0, past_k_1, ..."""
    return [PAST_PREFIX + name for name in step_outputs(layers)]


def graph_file(role: str, variant: str = "fp32") -> str:
    """The file a role's graph is written to: encoder.onnx, decoder.fp16.onnx, prior_sample.int8.onnx."""
    return f"{role}.onnx" if variant == "fp32" else f"{role}.{variant}.onnx"
