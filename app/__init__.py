"""The Vigil server: ingest, store, hub, API (imports monitors/, never the other way round)."""
