"""Models of the lottery module (built by its own issue)."""
