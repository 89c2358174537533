"""Tables of issue 5 (marks); filled in by its change."""
