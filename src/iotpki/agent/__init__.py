"""The device side: key store, EST and CMP clients, renewal (imports iotpki.wire only)."""
