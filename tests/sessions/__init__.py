"""Session workflow tests (issue 7)."""
