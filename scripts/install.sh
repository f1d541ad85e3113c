#!/usr/bin/env bash
# Builds LeadFlow (release) and installs it as a system service's program: the binary in
# PREFIX/bin, the `leadflow` system user, /etc/leadflow (configuration and secrets, group
# leadflow) and /var/lib/leadflow (archives, spool, token and erasure keys; 0700, owned by leadflow).
# Safe to run again: it replaces the binary (atomically, so a running job keeps its own)
# and leaves existing configuration, secrets and state alone.
#
# Usage: sudo bash scripts/install.sh [--prefix /usr/local] [--no-build]
#   --prefix DIR   where bin/leadflow goes (default /usr/local)
#   --no-build     install the release binary built before (.build/release/leadflow)
# Then: docs/operations.md (secrets, the schedule, alerts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

prefix=/usr/local
build=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --no-build) build=no; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) say "unknown argument: $1 (see --help)"; exit 64 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { say "run as root: it creates a system user and folders under /etc and /var/lib"; exit 1; }

# To build: the C libraries' headers. To run: their shared libraries, CA certificates for
# Graph's TLS, time zones. (The own Postgres for `leadflow demo` is optional: postgresql.)
LEADFLOW_APT_PACKAGES=(pkg-config libcurl4-openssl-dev libpq-dev libarchive-dev
                       libcurl4 libpq5 libarchive13 ca-certificates tzdata)
ensure_packages

if [ "$build" = yes ]; then
    command -v swift >/dev/null || { say "Swift 6 is required to build (https://www.swift.org/install/linux/)"; exit 1; }
    # The Swift runtime linked in, so the binary needs only the C libraries above (and
    # runs on a host without a Swift toolchain). Where that fails, the ordinary build,
    # which needs the toolchain's runtime libraries at run time.
    say "building the release binary (several minutes the first time)"
    if ! swift build -c release --product leadflow --static-swift-stdlib; then
        say "the build with --static-swift-stdlib failed; building against the shared Swift runtime"
        swift build -c release --product leadflow
    fi
fi
binary=.build/release/leadflow
[ -x "$binary" ] || { say "no release binary at $binary: run without --no-build"; exit 1; }

# A new file renamed over the old one: a run that is executing the old binary keeps it.
install -d -m 0755 "$prefix/bin"
install -m 0755 "$binary" "$prefix/bin/.leadflow.new"
mv -f "$prefix/bin/.leadflow.new" "$prefix/bin/leadflow"

# The system user: no login, no shell; its home is the state folder.
if ! id -u leadflow >/dev/null 2>&1; then
    group=(--user-group)
    getent group leadflow >/dev/null && group=(--gid leadflow)
    useradd --system "${group[@]}" --home-dir /var/lib/leadflow --no-create-home --shell /usr/sbin/nologin leadflow
    say "created the system user leadflow"
fi

# Configuration: readable by the service's group, writable by root only. Secrets in it
# (app-secret, database-url) are 0600 root: systemd's LoadCredential= hands them over.
install -d -m 0750 -o root -g leadflow /etc/leadflow
if [ ! -e /etc/leadflow/facebook-leads.yml ]; then
    install -m 0640 -o root -g leadflow pipelines/facebook-leads.yml /etc/leadflow/facebook-leads.yml
    say "installed /etc/leadflow/facebook-leads.yml (edit the mapping to your Integrate sources)"
fi

# State: the token and erasure keys live here; nobody but the service reads it.
install -d -m 0700 -o leadflow -g leadflow /var/lib/leadflow
chown leadflow:leadflow /var/lib/leadflow
chmod 0700 /var/lib/leadflow

say "installed $("$prefix/bin/leadflow" --version) at $prefix/bin/leadflow"
if ldd "$prefix/bin/leadflow" 2>/dev/null | grep -q 'libswiftCore'; then
    say "note: linked against the shared Swift runtime; the host needs the Swift toolchain's libraries"
fi
