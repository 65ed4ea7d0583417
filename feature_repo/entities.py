"""Entities: the pseudonymised customer and the product (item) they buy."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A shop customer, by pseudonymised id (HMAC of the shop's customer id).",
)

product = Entity(
    name="product",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalogue item (stock code).",
)
