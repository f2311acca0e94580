"""Persistence: SQLite by default, PostgreSQL for shared state."""
