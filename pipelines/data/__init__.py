"""Data in: the synthetic generator, export adapters, pseudonymisation, ingest and the temporal split."""
