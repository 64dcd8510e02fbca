# The customers module is built by its own issue; its URLs are added here.
app_name = "customers"

urlpatterns: list = []
