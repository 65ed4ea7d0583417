"""Monitoring: Evidently reports, drift samples and the publishing gate."""
