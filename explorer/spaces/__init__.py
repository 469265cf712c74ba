"""Embedding spaces: one API for every space (embed), content keys, the on-disk cache, engines."""
