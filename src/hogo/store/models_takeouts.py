"""Tables of issue 5 (takeouts); filled in by its change."""
