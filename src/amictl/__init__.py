"""amictl: the whole life of Amazon EC2 machine images."""

__version__ = "0.1.0"
