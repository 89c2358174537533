"""Tables of issue 5 (erasure); filled in by its change."""
