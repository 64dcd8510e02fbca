"""Models of the followups module (built by its own issue)."""
