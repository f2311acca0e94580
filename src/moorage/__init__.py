"""Moorage: enterprise governance in front of Docker."""

__all__ = ["__version__"]

__version__ = "0.1.0"
