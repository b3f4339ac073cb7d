"""``round(value, digits)`` for the durations and ages written on every request, without
the correctly rounded decimal conversion ``round`` makes each time (two of them per
response-cache hit, a few thousand instructions each).

``round(value, digits)`` is the double nearest to k / 10**digits, where k is the integer
nearest to value * 10**digits (ties to even, on the exact binary value). When that product
is a positive number below 10**9 whose fraction is not within 10**-6 of one half, its
floating-point product (off by less than 2**-52 * 10**9, about 2.3e-7) has the same integer
part and the same side of one half, so k is read from it; k / 10.0**digits, both exact
doubles, is then the nearest double to k / 10**digits, as IEEE division rounds correctly.
Every other value (zero, negative, large, not finite, near a tie) is given to ``round``.
"""

from __future__ import annotations

_BELOW_HALF = 0.5 - 1e-6
_ABOVE_HALF = 0.5 + 1e-6
_LARGEST = 1e9


def rounded(value: float, digits: int, scale: float) -> float:
    """``round(value, digits)``, the same float; ``scale`` is ``10.0 ** digits``."""
    scaled = value * scale
    if 0.0 < scaled < _LARGEST:
        whole = int(scaled)
        fraction = scaled - whole
        if fraction < _BELOW_HALF:
            return whole / scale
        if fraction > _ABOVE_HALF:
            return (whole + 1) / scale
    return round(value, digits)
