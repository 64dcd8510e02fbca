"""Placeholder: webhook delivery jobs (being written)."""
