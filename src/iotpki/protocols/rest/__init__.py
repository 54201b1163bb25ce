"""The REST API for CRM and device-management integrators (`/api/v1`, FastAPI, OpenAPI 3.1).

A thin adapter: it authenticates the principal, asks `core.integration.access` whether it may act, calls
the core services and encodes their results; errors are RFC 9457 problem documents.
"""
