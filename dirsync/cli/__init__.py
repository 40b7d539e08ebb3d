"""The ``dirsync`` command line: a driver that parses, calls the shell or the store, and prints."""
