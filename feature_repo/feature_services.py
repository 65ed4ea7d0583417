"""Feature services: what the ranker trains and scores on, and the customer profile serving shows."""

from feast import FeatureService
from features import customer_features, customer_product_features, customer_product_recency, product_features

ranker = FeatureService(
    name="ranker",
    features=[
        customer_features[
            [
                "recency_days",
                "tenure_days",
                "orders_30d",
                "spend_30d",
                "orders_90d",
                "spend_90d",
                "orders_365d",
                "spend_365d",
                "basket_size",
                "basket_value",
                "distinct_items",
                "repurchase_rate",
                "top_category",
                "top_category_share",
                "categories",
                "rfm_score",
                "rfm_tier",
                "behaviour_cluster",
            ]
        ],
        product_features,
        customer_product_features[["times_bought", "units_bought", "mean_repurchase_interval_days"]],
        customer_product_recency,
    ],
    description="The LightGBM ranker's features (training via point-in-time joins, scoring online).",
)

customer_profile = FeatureService(
    name="customer_profile",
    features=[customer_features[["rfm_score", "rfm_tier", "behaviour_cluster", "profile_keywords", "recency_days"]]],
    description="The loyalty segment and profile shown beside a customer's recommendations.",
)
