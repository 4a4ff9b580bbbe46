# Base "realworld/python:3.11", built by Docker's classic builder (DOCKER_BUILDKIT=0)
# on the `docker import`ed Debian base. It stands in for Docker Hub's python:3.11-slim:
# Debian's python3 with venv and pip, `python` = python3, and pip allowed outside a
# venv (python:*-slim has no EXTERNALLY-MANAGED marker either).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python-is-python3 \
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
