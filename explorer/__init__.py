"""Latent Space Explorer: what a Stable Diffusion VAE's latent space holds, and what it does not."""

__version__ = "0.1.0"
