"""URL routes (pages and API) of this app."""

urlpatterns: list = []
