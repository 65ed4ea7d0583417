"""Customer, product and customer x product features, point-in-time correct, and the Feast glue (docs/features.md)."""
