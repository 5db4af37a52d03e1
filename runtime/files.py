"""Names fixed by the model-folder format; imported by both vaeport.export and vaeport.runtime."""

from __future__ import annotations

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
MANIFEST_FILE = "vae.json"
MODEL_CARD_FILE = "MODEL_CARD.md"

FORMAT_NAME = "vaeport-model"
FORMAT_VERSION = 2  # what vae-export writes (2 adds `classes` and `inputs`: conditional models)
SUPPORTED_FORMAT_VERSIONS = (1, 2)  # what the runtime reads: every version vaeport has written

# Graph input/output names.
ENCODER_INPUT = "x"
ENCODER_OUTPUTS_VAE = ("z_mean", "z_log_var")
ENCODER_OUTPUTS_AE = ("z",)
DECODER_INPUT = "z"
DECODER_OUTPUT = "x"
LABEL_INPUT = "y"  # a conditional model's class index, int64 [N], into both graphs
