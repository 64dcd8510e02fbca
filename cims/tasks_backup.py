"""Backup jobs (cims.backups). PLACEHOLDER: to be written."""
