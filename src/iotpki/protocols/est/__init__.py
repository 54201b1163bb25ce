"""EST over HTTPS (RFC 7030 §3.2.2, §4): `/.well-known/est[/<label>]/<operation>`."""
