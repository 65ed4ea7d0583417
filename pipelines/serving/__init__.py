"""Serving: today's lists for every customer, versioned publishing, the serving store and the API."""
