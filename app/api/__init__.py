"""HTTP and websocket API; every handler depends on ``current_user``."""
