"""Models of the reports module (built by its own issue)."""
