"""The session farm on each job store, for the modules that must pass on SQLite and on PostgreSQL.

A module runs all its tests on both by importing the fixture, which then stands for
``farm`` in that module only::

    from tests.e2e.stores import farm_on_each_store  # noqa: F401  (the ``farm`` fixture, on each store)
"""

from __future__ import annotations

import pytest

from tests.farm import Farm

STORES = ("sqlite", "postgresql")


@pytest.fixture(name="farm", params=STORES)
def farm_on_each_store(request: pytest.FixtureRequest) -> Farm:
    """``sqlite_farm``, then ``postgresql_farm`` (both session farms, started once)."""
    farm: Farm = request.getfixturevalue(f"{request.param}_farm")
    return farm
