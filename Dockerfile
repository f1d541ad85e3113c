# syntax=docker/dockerfile:1
# LeadFlow's image: a Swift build stage, then Debian 12 slim with only the C libraries the
# binary links (the Swift runtime is linked in), running as the non-root user leadflow,
# uid/gid 10001, as deploy/kubernetes/cronjob.yaml expects.
#
#   docker build -t registry.example.com/leadflow:0.1.0 .      (the tag: leadflow --version)
#   docker run --rm registry.example.com/leadflow:0.1.0 --version
#
# The builder runs Debian 12 as well, so the libraries it links against are the ones
# the runtime stage installs.
FROM swift:6.3.1-bookworm AS build
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends pkg-config libcurl4-openssl-dev libpq-dev libarchive-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest first: resolving the packages is cached while only sources change.
COPY Package.swift ./
RUN swift package resolve
COPY . .
RUN swift build -c release --product leadflow --static-swift-stdlib \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/leadflow" /out/leadflow

FROM debian:12-slim
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -q \
 && apt-get install -y -q --no-install-recommends libcurl4 libpq5 libarchive13 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --home-dir /var/lib/leadflow --no-create-home --shell /usr/sbin/nologin leadflow \
 && install -d -m 0750 -o root -g leadflow /etc/leadflow \
 && install -d -m 0700 -o leadflow -g leadflow /var/lib/leadflow
COPY --from=build /out/leadflow /usr/local/bin/leadflow
# A starting point; Kubernetes mounts its ConfigMap over /etc/leadflow.
COPY --chown=root:leadflow --chmod=0640 pipelines/facebook-leads.yml /etc/leadflow/facebook-leads.yml
ENV LEADFLOW_HOME=/var/lib/leadflow
USER 10001:10001
WORKDIR /var/lib/leadflow
# The binary must run: a build that links something the runtime stage lacks fails here.
RUN ["/usr/local/bin/leadflow", "--version"]
ENTRYPOINT ["/usr/local/bin/leadflow"]
CMD ["run", "--log-format", "json"]
