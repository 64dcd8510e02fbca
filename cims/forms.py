from django.forms.renderers import TemplatesSetting


class BootstrapFormRenderer(TemplatesSetting):
    """``{{ form }}`` renders every form with Bootstrap 5 markup from templates/forms/."""

    form_template_name = "forms/form.html"
    field_template_name = "forms/field.html"
