"""Pure numerics, arrays in and arrays out: metrics, neighbours, latent maths, VQ codes, projections."""
