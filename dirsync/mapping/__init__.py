"""The pure core: mirror → desired organization → plan → guards. No I/O, no foreign libraries."""
