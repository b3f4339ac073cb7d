"""dataintel: a GraphQL API gateway for the data-intelligence service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dataintel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
