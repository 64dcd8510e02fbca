"""Reports of this subject (being built)."""
