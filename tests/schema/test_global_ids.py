"""One decoder for every global id: integer keys, declared ids and job UUIDs."""

from __future__ import annotations

import pytest

from dataintel.errors import BadUserInputError
from dataintel.resolvers.global_ids import (
    GlobalId,
    declared_key,
    decode_global_id,
    encode_global_id,
    object_key,
    uuid_key,
)

JOB = "0b5c3f1e-2d4a-4c8e-9f6b-1a2b3c4d5e6f"


@pytest.mark.parametrize(
    ("type_name", "key"),
    [("Customer", 42), ("QualityCheck", "orders_have_items"), ("Job", JOB)],
)
def test_every_kind_of_key_round_trips(type_name: str, key: int | str) -> None:
    assert decode_global_id(encode_global_id(type_name, key)) == GlobalId(type_name, key)


@pytest.mark.parametrize("key", ["0", "-1", "Has Spaces", "", "4 2"])
def test_keys_of_no_known_form_are_bad_input(key: str) -> None:
    with pytest.raises(BadUserInputError, match="is not a global id"):
        decode_global_id(encode_global_id("Customer", key))


def test_each_argument_takes_its_own_form_and_names_the_wrong_type() -> None:
    assert object_key(encode_global_id("Order", 7), "Order", "order") == 7
    assert object_key("7", "Order", "order") == 7
    assert declared_key(encode_global_id("Reconciliation", "ledger"), "Reconciliation") == "ledger"
    assert uuid_key(encode_global_id("Job", JOB), "Job") == JOB
    assert uuid_key(JOB, "Job") == JOB
    with pytest.raises(BadUserInputError, match="is the id of a Customer, not of a Order"):
        object_key(encode_global_id("Customer", 7), "Order", "order")
    with pytest.raises(BadUserInputError, match="not a order id"):
        object_key(encode_global_id("Order", "text_key"), "Order", "order")
    with pytest.raises(BadUserInputError, match="not a global id"):
        declared_key(encode_global_id("Reconciliation", JOB), "Reconciliation")
    assert uuid_key(encode_global_id("Job", "not_a_uuid"), "Job") is None
    assert uuid_key(encode_global_id("Customer", JOB), "Job") is None
