"""Models of the complaints module (built by its own issue)."""
