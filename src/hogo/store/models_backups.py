"""Tables of issue 5 (backups); filled in by its change."""
