"""``rounded`` is ``round`` to the bit, ties and edges included."""

from __future__ import annotations

import math
import random
import struct

import pytest

from dataintel.decimal_rounding import rounded


def _bits(value: float) -> bytes:
    return struct.pack("d", value)


@pytest.mark.parametrize("digits", [2, 3])
def test_rounded_is_round_to_the_bit(digits: int) -> None:
    scale = 10.0**digits
    generator = random.Random(9)
    values = [0.0, -0.0, -1.5, -0.001, 1e9, 1e7, 0.125, 0.375, 2.675, 1.005, 0.0005, 5e-324]
    values += [math.inf, -math.inf]
    for _ in range(20_000):
        values.append(generator.uniform(0, 10) ** generator.choice((1, 2, 3, 5)))
        values.append(generator.random() / 1000)
        tie = (generator.randrange(0, 10**8) + 0.5) / scale
        whole = generator.randrange(0, 10**8) / scale
        for near in (tie, whole):
            values += [near, math.nextafter(near, 0.0), math.nextafter(near, math.inf)]
    for value in values:
        assert _bits(rounded(value, digits, scale)) == _bits(round(value, digits)), value
    assert math.isnan(rounded(math.nan, digits, scale))
