"""Thin adapters over the Google APIs: one module per API, errors mapped to ``core.errors.Kind``."""
