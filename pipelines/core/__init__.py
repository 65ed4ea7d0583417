"""Basics every step uses: parameters, errors, files, the canonical schema, the compute backend."""
