"""The `iotpki` command (Typer + Rich)."""
