"""Devices and their lifecycle: the transition table, component binding, the next identity and expiry."""
