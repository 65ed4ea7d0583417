"""The canonical interactions schema: one row per purchased order line.

Every adapter maps its source onto these columns; every later step reads only them.
Documented in docs/data.md.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from pipelines.core.errors import InputError

ORDER = "order_id"
CUSTOMER = "customer_id"
ITEM = "item_id"
SIMILAR = "similar_id"  # an item similar to `item_id` (published for item and basket pages)
TS = "timestamp"
QUANTITY = "quantity"
PRICE = "unit_price"
COUNTRY = "country"
DESCRIPTION = "description"
CATEGORY = "category"
AS_OF = "as_of"  # the cutoff a row's features were computed at (drift samples)
GLOBAL = "*"  # the country of the cold-start list for a country without its own

REQUIRED = (CUSTOMER, ITEM, TS)
OPTIONAL = (ORDER, QUANTITY, PRICE, COUNTRY, DESCRIPTION, CATEGORY)
COLUMNS = (ORDER, CUSTOMER, ITEM, TS, QUANTITY, PRICE, COUNTRY, DESCRIPTION, CATEGORY)

# What each optional column feeds; reported when a source does not have it.
FEATURES_NEEDING = {
    ORDER: "baskets are approximated by customer and timestamp (basket size, co-purchase)",
    QUANTITY: "quantity is taken as 1 per line (units sold, monetary value)",
    PRICE: "price and monetary features (monetary value, price, revenue)",
    COUNTRY: "country features and per-country popularity",
    DESCRIPTION: "text features (content-based candidates, profile keywords, diversity over text)",
    CATEGORY: "category features (category affinity, diversity over categories)",
}

CLEAN_SCHEMA = pa.DataFrameSchema(
    {
        ORDER: pa.Column(str, nullable=False),
        CUSTOMER: pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        ITEM: pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
        TS: pa.Column("datetime64[ns]", nullable=False),
        QUANTITY: pa.Column(float, pa.Check.gt(0), nullable=False),
        PRICE: pa.Column(float, pa.Check.gt(0), nullable=True),
        COUNTRY: pa.Column(str, nullable=True),
        DESCRIPTION: pa.Column(str, nullable=True),
        CATEGORY: pa.Column(str, nullable=True),
    },
    strict=True,
    ordered=True,
)


def validate_clean(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check cleaned interactions against the contract; one-line error on failure."""
    try:
        return CLEAN_SCHEMA.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        first = cases.iloc[0]
        raise InputError(
            f"{source}: {len(cases)} value(s) break the interactions contract; first: "
            f"column '{first['column']}' check '{first['check']}' value {first['failure_case']!r}"
        ) from None
