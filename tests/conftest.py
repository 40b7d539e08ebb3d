"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import settings

# No per-example deadline: speed is measured in bench/, never in a test, and on a loaded
# machine hypothesis's default (200 ms) fails properties for the machine's sake, not the code's.
settings.register_profile("dirsync", deadline=None)
settings.load_profile("dirsync")
