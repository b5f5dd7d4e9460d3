"""Holobazaar: augmented-reality storytelling and display server for food markets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("holobazaar")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
