"""dirsync: keeps password-manager organizations in step with their clients' directories."""


def __getattr__(name: str) -> str:
    if name == "__version__":  # asked of git or the metadata when needed (see dirsync.version)
        from dirsync.version import current

        return current()
    raise AttributeError(f"module 'dirsync' has no attribute {name!r}")
