"""Models before and after loading: specs, the registry, the Hub, devices, VAEs, embedders."""
