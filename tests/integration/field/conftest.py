"""The field tests (the contract's "Running in the field") use the daemon tests' company, config
and frozen clock."""

from tests.integration.daemon.conftest import frozen, setup

__all__ = ["frozen", "setup"]
