"""Codecs only: no I/O, no server dependencies. Shared by the server and the device agent."""
