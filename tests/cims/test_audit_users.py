"""The user named on an access-log row stays named: deleting the account is refused."""

import pytest
from django.db.models import ProtectedError

from cims.audit import seal, verify
from cims.models import PersonalDataAccess, log_personal_data_access


def test_it_refuses_to_delete_a_user_named_in_the_access_log(sales_rep):
    log_personal_data_access(user=sales_rep, action=PersonalDataAccess.Action.EXPORT, object_type="customers.customer")
    seal()
    with pytest.raises(ProtectedError):
        sales_rep.delete()
    assert PersonalDataAccess.objects.get().user == sales_rep
    assert verify().ok


def test_it_lets_the_admin_explain_why_a_logged_user_cannot_be_deleted(administrator, sales_rep, client_for):
    from django.conf import settings

    log_personal_data_access(user=sales_rep, action=PersonalDataAccess.Action.EXPORT, object_type="customers.customer")
    response = client_for(administrator).post(
        f"/{settings.ADMIN_URL}accounts/user/{sales_rep.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 200  # the admin's "cannot delete: protected objects" page
    assert type(sales_rep).objects.filter(pk=sales_rep.pk).exists()
