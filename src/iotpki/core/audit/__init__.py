"""The hash-chained audit log: writing entries and reading and verifying the chain."""
