"""What a server's startup built is moved out of the collector's generations, once."""

from __future__ import annotations

import gc

from dataintel.app import create_app
from dataintel.collector import freeze_startup_objects
from tests.plugins.app import SettingsFactory, serving


async def test_a_started_app_leaves_its_objects_to_no_full_collection(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings())):
        assert gc.get_freeze_count() > 0
    # Once per process: a later app (or call) does not freeze what it made.
    assert freeze_startup_objects() is False
