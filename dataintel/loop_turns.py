"""Turns of the event loop for work that never waits: reads on its thread, warm executions.

The loop polls its sockets (and accepts one new connection) only between turns. Work that
never waits on anything would run every ready request to its end in one turn: under load a
turn took 100-400 ms, and 32 new connections were accepted one per turn, over two seconds
(the p99 of a load test's first requests). Such work calls ``take_turn`` first: the first
caller of a turn opens a slice of ``SLICE_SECONDS``; those after it in the same turn share
it, and once it is over wait for a later turn, in their order.
"""

from __future__ import annotations

import asyncio
import math
import time

SLICE_SECONDS = 0.002
"""How long work on the loop's thread runs back to back before the next waits a turn."""


class _Slice:
    ends = 0.0


async def take_turn() -> None:
    """Returns at once within the current slice; else waits for a later turn of the loop."""
    now = time.perf_counter()
    if now < _Slice.ends:
        return
    turn_ended = _Slice.ends
    while True:
        await asyncio.sleep(0)
        now = time.perf_counter()
        if _Slice.ends == turn_ended:
            # The first caller of a new turn opens its slice.
            _Slice.ends = now + SLICE_SECONDS
            return
        if now < _Slice.ends:
            return
        turn_ended = _Slice.ends


def endless_slice() -> None:
    """A slice that never ends: for code driven without a running loop (the bench's
    instruction counts, which run each request to its end in one call)."""
    _Slice.ends = math.inf
