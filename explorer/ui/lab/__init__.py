"""The VAE lab tab."""
