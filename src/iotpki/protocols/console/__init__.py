"""The web console at `/console/` on the HTTPS listener: server-rendered pages over the same
core services, roles and audit as the REST API (docs/console.md)."""
