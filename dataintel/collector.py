"""The cyclic garbage collector in a server process: what startup built is never scanned.

Starting the app imports every module and builds the schema, the plans' planner, the pools:
a couple of hundred thousand objects that live as long as the process. Python's collector
walks all of them in every full collection, which ran every few thousand requests and cost
more than those requests' own work (docs/performance.md). Moving them out of its generations
once, when the first app of the process has started (``gc.freeze``), leaves the collector
the objects made since. Later apps in the same process (tests) do not freeze again, so
their garbage stays collectable.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_objects() -> bool:
    """Moves every object alive now out of the collector's reach, once per process.

    Returns whether this call froze them (False: an earlier app of the process did).
    """
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True
