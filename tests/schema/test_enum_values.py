"""Entity enums made from stored values by lookup: every member found, an unknown value
refused as the enum itself refuses it."""

from __future__ import annotations

import enum

import pytest

from dataintel.schema import commerce


@pytest.mark.parametrize(
    ("kind", "by_value"),
    [
        (commerce.OrderStatus, commerce._ORDER_STATUS),
        (commerce.SalesChannel, commerce._SALES_CHANNEL),
        (commerce.Region, commerce._REGION),
        (commerce.CustomerTier, commerce._CUSTOMER_TIER),
        (commerce.AcquisitionChannel, commerce._ACQUISITION_CHANNEL),
    ],
)
def test_every_stored_value_is_its_member_and_others_are_refused(
    kind: type[enum.Enum], by_value: object
) -> None:
    assert callable(by_value)
    for member in kind:
        assert by_value(member.value) is member
    with pytest.raises(ValueError, match="is not a valid"):
        by_value("no_such_value")
