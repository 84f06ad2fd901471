"""poolctl: run virtualization pools from a terminal."""

__version__ = "0.1.0"
