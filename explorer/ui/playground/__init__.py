"""The autoencoder playground tab."""
