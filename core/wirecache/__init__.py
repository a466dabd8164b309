"""wirecache: a caching proxy for SQL databases that speaks their wire protocols."""

__version__ = "0.1.0"
