"""Use cases. Every change and its audit event commit in one unit of work."""
