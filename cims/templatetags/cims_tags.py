from django import forms, template
from django.utils.safestring import SafeString

register = template.Library()

_CHECK = (forms.CheckboxInput, forms.RadioSelect, forms.CheckboxSelectMultiple)


@register.filter
def bs_widget(bound_field: forms.BoundField) -> SafeString:
    """Render a form field's widget with Bootstrap 5 classes (and is-invalid when it has errors)."""
    widget = bound_field.field.widget
    if isinstance(widget, _CHECK):
        css = "form-check-input"
    elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
        css = "form-select"
    else:
        css = "form-control"
    if bound_field.errors:
        css += " is-invalid"
    existing = widget.attrs.get("class", "")
    return bound_field.as_widget(attrs={"class": f"{existing} {css}".strip()})


@register.filter
def is_checkbox(bound_field: forms.BoundField) -> bool:
    return isinstance(bound_field.field.widget, forms.CheckboxInput)
