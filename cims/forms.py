import datetime

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.forms.renderers import TemplatesSetting
from django.utils.translation import gettext_lazy as _


class BootstrapFormRenderer(TemplatesSetting):
    """``{{ form }}`` renders every form with Bootstrap 5 markup from templates/forms/."""

    form_template_name = "forms/form.html"
    field_template_name = "forms/field.html"


# Dates a search filter accepts. A filter day becomes a moment (midnight in Asia/Shanghai, or the
# next day's midnight for an "up to" bound), which overflows near date.min / date.max; no record
# of ours lies outside these years anyway.
FILTER_DATE_MIN = datetime.date(1900, 1, 1)
FILTER_DATE_MAX = datetime.date(2999, 12, 31)


class FilterDateField(forms.DateField):
    """A date for a list filter: outside FILTER_DATE_MIN … FILTER_DATE_MAX it is a field error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
        super().__init__(**kwargs)
        self.validators += [
            MinValueValidator(FILTER_DATE_MIN, message=_("Enter a date no earlier than %(limit_value)s.")),
            MaxValueValidator(FILTER_DATE_MAX, message=_("Enter a date no later than %(limit_value)s.")),
        ]


# The range of our primary keys (BigAutoField) and of SQLite's INTEGER.
PK_MIN, PK_MAX = -(2**63), 2**63 - 1


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField for integer ids: an id past the 64-bit range is "not one of the
    choices" like any other unknown id. Django looks the ids up with ``pk__in``, which does not
    guard against overflow: SQLite raised OverflowError (a 500) on ``tags=9223372036854775808``."""

    def _check_values(self, value):
        for pk in value or ():
            try:
                number = int(str(pk))
            except (TypeError, ValueError):
                continue  # the parent reports it as an invalid value
            if not PK_MIN <= number <= PK_MAX:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)
