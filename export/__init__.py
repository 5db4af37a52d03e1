"""vaeport.export: torch -> ONNX for the encoder and the decoder, graph checks, the parity gate,
fp16/int8 variants and `vae-export`. Importing this package does not import torch."""
