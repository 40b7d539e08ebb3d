"""The embedded organization store (SQLAlchemy): organizations, mirror, cursors, runs, events."""
