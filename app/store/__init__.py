"""Durable record of everything ingested, behind the ``Store`` protocol."""

from app.store.base import Record, Store, StoredReading, StoredStatus

__all__ = ["Record", "Store", "StoredReading", "StoredStatus"]
