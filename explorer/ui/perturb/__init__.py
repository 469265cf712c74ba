"""The perturbation tab."""
