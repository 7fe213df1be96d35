"""Serendip: a self-hostable recommendation system for social content platforms.

Importing the package is cheap: heavy libraries (torch, sentence-transformers, pyspark)
are imported lazily inside the model families that need them.
"""

from serendip.errors import ConfigError, DataError, NotFittedError, SerendipError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "NotFittedError", "SerendipError", "__version__"]
