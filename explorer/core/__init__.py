"""The base layer: settings, user-facing errors, files, public mode, ZeroGPU, LRU, progress (no torch)."""
