"""Connectors: the I/O edge that reads a directory. Foreign exceptions stop here."""
