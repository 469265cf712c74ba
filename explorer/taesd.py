"""The TAESD-family architecture, where the README names it: :mod:`explorer.models.taesd`."""

from explorer.models.taesd import *  # noqa: F403
from explorer.models.taesd import __all__  # noqa: F401
