"""SQLAlchemy 2 implementations of the core's repositories (SQLite default, PostgreSQL)."""
