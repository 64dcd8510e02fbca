"""Audit jobs (cims.audit). PLACEHOLDER: to be written."""
