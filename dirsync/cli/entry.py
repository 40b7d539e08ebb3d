"""The ``dirsync`` executable: the command line, imported with the cyclic collector paused.

Importing the command line builds a few hundred thousand objects (SQLAlchemy, pydantic, structlog)
that live as long as the process and form no garbage: collection passes during the imports only
walk them, and later full passes would walk them again. ``gc.freeze`` moves them out of the
collector's sight. A no-change sync runs ~3.5 % fewer instructions (callgrind), nearly all of
it interpreter time, not I/O.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from dirsync.cli.main import main as run_command_line
    finally:
        gc.freeze()
        gc.enable()
    run_command_line()
