"""The reports, one module per subject; importing this package registers them all."""

from reports.library import campaigns, customers, sales, service  # noqa: F401
