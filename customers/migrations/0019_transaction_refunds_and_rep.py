"""Refunds are negative transactions; each transaction credits a sales rep (the customer's owner
when it was recorded; existing transactions get the customer's owner of today, in one UPDATE)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0018_datarequest_time_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="transaction",
            name="transaction_amount_positive",
        ),
        migrations.AddField(
            model_name="historicaltransaction",
            name="rep",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="sales rep",
            ),
        ),
        migrations.AddField(
            model_name="transaction",
            name="rep",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="sales rep",
            ),
        ),
        migrations.AddConstraint(
            model_name="transaction",
            constraint=models.CheckConstraint(
                condition=models.Q(("amount", 0), _negated=True),
                name="transaction_amount_not_zero",
                violation_error_message="The amount cannot be zero.",
            ),
        ),
        migrations.RunSQL(
            "UPDATE customers_transaction SET rep_id = "
            "(SELECT owner_id FROM customers_customer WHERE customers_customer.id = customers_transaction.customer_id) "
            "WHERE rep_id IS NULL",
            migrations.RunSQL.noop,
        ),
    ]
