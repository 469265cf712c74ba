"""The perturbation lab: ladders of perturbed images (ladder) and how far each space moves (measure)."""
