"""dirsync: keeps password-manager organizations in step with their clients' directories."""

__version__ = "0.1.0"
