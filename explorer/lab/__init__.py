"""The VAE lab: encode, round trip, generations, compare, interpolate, edit (see :mod:`.actions`)."""
