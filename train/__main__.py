"""`python -m vaeport.train ...` is `vae-train ...` (the form torchrun launches)."""

from vaeport.train.cli import main

main()
