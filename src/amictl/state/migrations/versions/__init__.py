"""Schema revisions of the state store (one module per revision, oldest first)."""
