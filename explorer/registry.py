"""The plugin API's registry, where the README names it: :mod:`explorer.models.registry`."""

from explorer.models.registry import *  # noqa: F403
from explorer.models.registry import __all__  # noqa: F401
