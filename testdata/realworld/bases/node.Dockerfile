# Base "realworld/node:18", built by BuildKit in dockerd (DOCKER_BUILDKIT=1) on the
# `docker import`ed Debian base. It stands in for Docker Hub's node:18: Debian's nodejs
# and npm, and the `node` user (uid/gid 1000) the official image has.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
CMD ["node"]
