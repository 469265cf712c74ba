"""The guided lesson tab (Start here)."""
