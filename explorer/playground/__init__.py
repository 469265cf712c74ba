"""AE vs VAE vs VQ-VAE on scikit-learn's digits: models (digits), cached training (cache), figures."""
