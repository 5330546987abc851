"""Where an upgrade spike leaves its results for the spike controller, apart from the
upgrade's own modules: every ``--spike`` session looks here at its end, and importing the
upgrade session (the index client, the network stack, the environment manager) for that
cost each matrix cell ~30 ms of its start-up."""

from __future__ import annotations

import pytest

from pytest_spike.model import UpgradeResult

#: The upgrade results of this session (set by the upgrade plugin, when there is one).
UPGRADES = pytest.StashKey[list[UpgradeResult]]()
