"""Thin protocol adapters: decode, call the core, encode (DESIGN.md §3)."""
