"""subnet-proxy: the validator-side library of the audio subnet (side-server, stores, loop, rewards)."""

from protocol import __spec_version__, __version__

__all__ = ["__spec_version__", "__version__"]
