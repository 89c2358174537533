"""Pure rules, no I/O. Each module cites the requirement IDs it implements."""
