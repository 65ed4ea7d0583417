"""The LightGBM ranker: its dataset, training (local and dask), inference and explanations."""
