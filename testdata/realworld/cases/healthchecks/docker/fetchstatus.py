#!/usr/bin/env python

"""HEALTHCHECK probe, as in healthchecks: GET /api/v3/status/ with a valid Host header."""

from __future__ import annotations

import os
from urllib.request import Request, urlopen

ALLOWED_HOSTS = os.getenv("ALLOWED_HOSTS", "*").split(",")
host = ALLOWED_HOSTS[0]
if host == "*":
    host = "localhost"

req = Request("http://localhost:8000/api/v3/status/", headers={"Host": host})
with urlopen(req) as response:
    assert response.status == 200

print("Status OK")
