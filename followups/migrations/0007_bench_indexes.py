"""The pipeline board's index (docs/performance.md, "The 360 timeline and the pipeline board").

Each column of the board shows its first cards in the order (expected close date, soonest first,
undated last; newest first), read from this index one LIMITed range per stage, so a column costs
the same with 50 or 100,000 opportunities in it.

The index lives in the database only (``SeparateDatabaseAndState``), not in ``Opportunity.Meta``:
the model's state is unchanged, so ``makemigrations`` has nothing to add. Should ``Meta.indexes``
ever declare it, move the ``AddIndex`` below into ``state_operations`` as well. PostgreSQL only:
SQLite cannot write ``NULLS LAST`` in an index, and the quick start's boards are small.
"""

from django.db import migrations, models
from django.db.models import F


class AddIndexOnPostgreSQL(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("followups", "0006_campaign_roles"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                AddIndexOnPostgreSQL(
                    model_name="opportunity",
                    index=models.Index(
                        F("stage"),
                        F("expected_close_date").asc(nulls_last=True),
                        F("id").desc(),
                        name="opportunity_board",
                    ),
                ),
            ],
            state_operations=[],
        ),
    ]
