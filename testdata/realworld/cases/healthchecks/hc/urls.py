from django.urls import path

from hc.api import views

urlpatterns = [
    path("", views.index),
    path("api/v3/status/", views.status),
]
