# The lottery module is built by its own issue; its URLs are added here.
app_name = "lottery"

urlpatterns: list = []
