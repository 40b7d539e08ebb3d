"""Alembic migrations of the store; run programmatically by ``dirsync.state.engine.upgrade``."""
