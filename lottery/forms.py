"""Forms of the lottery's staff pages: a draft event with its rules and weights, its prize tiers, and
the public value entered after publishing."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cims.forms import IdsChoiceField
from customers.models import Customer, CustomerLevel
from lottery import services
from lottery.eligibility import level_weights
from lottery.models import MAX_TIER_QUANTITY, MAX_WEIGHT, LotteryEvent
from lottery.services import RULE_FIELDS, TierData

# Rows of the prize table a form may carry: far more tiers than any party has, and a bound on what a
# forged TOTAL_FORMS makes the server build.
MAX_TIER_ROWS = 50
EXTRA_TIER_ROWS = 3
WEIGHT_PREFIX = "weight_"


class EventForm(forms.Form):
    """The event, its eligibility rules and one weight field per active customer level."""

    name = forms.CharField(label=_("Name"), max_length=100)
    year = forms.IntegerField(
        label=_("Year"), min_value=2000, max_value=2100, help_text=_("The year it thanks customers for.")
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown on the public page: what the lottery is for, how and when prizes are handed over."),
    )
    statuses = forms.MultipleChoiceField(
        label=_("Lifecycle statuses"),
        choices=Customer.Status.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one lifecycle status.")},
        help_text=_("Customers in one of these statuses may enter."),
    )
    levels = IdsChoiceField(
        label=_("Customer levels"),
        queryset=CustomerLevel.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any level."),
    )
    min_amount = forms.DecimalField(
        label=_("Minimum purchases in the year (CNY)"),
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
        help_text=_("Net purchases (refunds deducted) dated in the event's year. Empty: no minimum."),
    )
    require_active_contract = forms.BooleanField(
        label=_("A contract in force in the year"),
        required=False,
        help_text=_("A contract in force (or expired since) at some time in the event's year."),
    )
    created_before = forms.DateField(
        label=_("Customer since before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Only customers created before this date (Beijing time). Empty: no limit."),
    )
    exclude_employees = forms.BooleanField(
        label=_("Exclude our own staff"),
        required=False,
        help_text=_("Customers marked as company employees cannot enter."),
    )

    def __init__(self, *args, event: LotteryEvent | None = None, **kwargs):
        self.event = event if event is not None and event.pk else None
        initial = kwargs.setdefault("initial", {})
        chosen: list[int] = []
        saved_weights: dict[int, int] = {}
        if self.event is None:
            initial.setdefault("year", timezone.localdate().year)
            initial.setdefault("statuses", [Customer.Status.WON])
            initial.setdefault("exclude_employees", True)
        else:
            e = self.event
            chosen = list(e.levels.values_list("pk", flat=True))
            saved_weights = level_weights(e)
            for name in RULE_FIELDS:
                initial.setdefault(name, getattr(e, name))
            initial.setdefault("levels", chosen)
        super().__init__(*args, **kwargs)
        # Active levels, and those this event already uses even if retired since (kept choosable).
        kept = set(chosen) | set(saved_weights)
        level_qs = CustomerLevel.objects.filter(is_active=True) | CustomerLevel.objects.filter(pk__in=kept)
        self.level_list = list(level_qs.distinct().order_by("sort_order", "name"))
        self.fields["levels"].queryset = CustomerLevel.objects.filter(pk__in=[lv.pk for lv in self.level_list])
        self.fields["levels"].choices = [(lv.pk, lv.name) for lv in self.level_list]
        for level in self.level_list:
            self.fields[f"{WEIGHT_PREFIX}{level.pk}"] = forms.IntegerField(
                label=level.name,
                min_value=1,
                max_value=MAX_WEIGHT,
                initial=saved_weights.get(level.pk, 1),
                widget=forms.NumberInput(attrs={"min": "1", "max": str(MAX_WEIGHT)}),
                error_messages={"required": _("Enter the number of entries (1 means no extra entries).")},
            )

    def weight_fields(self) -> list[forms.BoundField]:
        return [self[f"{WEIGHT_PREFIX}{level.pk}"] for level in self.level_list]

    def rule_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("min_amount", "created_before", "require_active_contract", "exclude_employees")]

    def clean(self):
        cleaned = super().clean()
        name, year = cleaned.get("name"), cleaned.get("year")
        if name and year:
            others = LotteryEvent.objects.filter(name=name, year=year)
            if self.event is not None:
                others = others.exclude(pk=self.event.pk)
            if others.exists():
                self.add_error("name", _("There is already a lottery of this name in that year."))
        return cleaned

    def fields_dict(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "year": data["year"],
            "description": data["description"],
            "statuses": list(data["statuses"]),
            "min_amount": data["min_amount"],
            "require_active_contract": data["require_active_contract"],
            "created_before": data["created_before"],
            "exclude_employees": data["exclude_employees"],
        }

    def levels_chosen(self) -> list[CustomerLevel]:
        return list(self.cleaned_data["levels"])

    def weights(self) -> dict[int, int]:
        return {level.pk: self.cleaned_data[f"{WEIGHT_PREFIX}{level.pk}"] for level in self.level_list}


class TierForm(forms.Form):
    """One prize tier. A row with no name, prize and quantity is skipped (how a row is removed)."""

    name = forms.CharField(label=_("Tier"), max_length=40, required=False)
    prize = forms.CharField(label=_("Prize"), max_length=200, required=False)
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        max_value=MAX_TIER_QUANTITY,
        required=False,
        widget=forms.NumberInput(attrs={"min": "1", "max": str(MAX_TIER_QUANTITY)}),
    )
    draw_order = forms.IntegerField(
        label=_("Draw order"),
        min_value=0,
        max_value=999,
        required=False,
        widget=forms.NumberInput(attrs={"min": "0", "max": "999"}),
        help_text=_("Drawn from the lowest number up. Empty: the row's place."),
    )

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not data.get("name") and not data.get("prize") and data.get("quantity") is None

    def clean(self):
        cleaned = super().clean()
        if self.errors or self.is_blank():
            return cleaned
        if not cleaned.get("name"):
            self.add_error("name", _("Name the tier."))
        if not cleaned.get("prize"):
            self.add_error("prize", _("Describe the prize."))
        if cleaned.get("quantity") is None:
            self.add_error("quantity", _("How many prizes?"))
        return cleaned


class BaseTierFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen: dict[str, TierForm] = {}
        for form in self.forms:
            if form.is_blank():
                continue
            name = form.cleaned_data["name"]
            if name in seen:
                form.add_error("name", _("Two tiers cannot share a name."))
            seen[name] = form
        if not seen:
            raise forms.ValidationError(_("Add at least one prize tier."), code="no_tiers")

    def tiers(self) -> list[TierData]:
        tiers = []
        for place, form in enumerate((f for f in self.forms if not f.is_blank()), start=1):
            data = form.cleaned_data
            order = data["draw_order"] if data["draw_order"] is not None else place
            tiers.append(TierData(data["name"], data["prize"], data["quantity"], order))
        return tiers


TierFormSet = forms.formset_factory(
    TierForm,
    formset=BaseTierFormSet,
    extra=EXTRA_TIER_ROWS,
    max_num=MAX_TIER_ROWS,
    validate_max=True,
    absolute_max=MAX_TIER_ROWS,
)


def tier_formset(data=None, *, event: LotteryEvent | None = None) -> BaseTierFormSet:
    """The prize table: the event's tiers (in draw order) and a few empty rows to add more."""
    initial = []
    # Bound rows are read as posted: an initial row left as it was must count, not pass as unchanged.
    if data is None and event is not None and event.pk:
        initial = [
            {"name": t.name, "prize": t.prize, "quantity": t.quantity, "draw_order": t.draw_order}
            for t in sorted(event.tiers.all(), key=lambda t: (t.draw_order, t.name))
        ]
    if data is not None and "tiers-TOTAL_FORMS" not in data:
        # Posted without the prize table: no tiers (the formset says so), not a broken form.
        data = data.copy()
        data.update({"tiers-TOTAL_FORMS": "0", "tiers-INITIAL_FORMS": "0"})
    return TierFormSet(data, prefix="tiers", initial=initial)


class PublicValueForm(forms.Form):
    """The value announced after publishing, used byte for byte: never trimmed."""

    value = forms.CharField(
        label=_("Public value"),
        strip=False,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "A value nobody could know when the list was published, e.g. the next 福彩3D draw numbers. "
            "Type it exactly as announced: it is used character for character."
        ),
    )

    def clean_value(self) -> str:
        value = self.cleaned_data.get("value") or ""
        problem = services.check_public_value(value)
        if problem:
            raise forms.ValidationError(problem)
        return value
