"""Users, roles, login sessions and the audit trail (issue 11)."""
