"""Models of the customers module (built by its own issue)."""
