"""Readings in: contracts, parameter catalogue, protocol codecs and device adapters (no app/ imports)."""
