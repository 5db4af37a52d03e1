"""vaeport.train: datasets, models, the VAE loss, the training loop, `vae-train` and `vae-eval`.

Importing this package does not import torch; the modules that need it do.
"""
