from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render


def index(request):
    return render(request, "base.html")


def status(request):
    """Like healthchecks' /api/v3/status/: OK when the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse("OK")
