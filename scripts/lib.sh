# Shared by scripts/test.sh and scripts/bench-*.sh: install what is missing, and run a
# throwaway PostgreSQL cluster as an unprivileged user (initdb refuses root).
# Source it; it defines functions and changes nothing by itself.

# The Debian packages LeadFlow builds and tests with.
LEADFLOW_APT_PACKAGES=(pkg-config libcurl4-openssl-dev libpq-dev libarchive-dev libarchive-tools
                       postgresql zstd gzip tar python3-aiosmtpd)

say() { printf 'leadflow: %s\n' "$*" >&2; }

# Installs the packages of $LEADFLOW_APT_PACKAGES that are missing; idempotent.
ensure_packages() {
    local missing=()
    for package in "${LEADFLOW_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "missing packages (${missing[*]}) and no sudo: install them as root"; return 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The newest installed PostgreSQL server's bin folder.
postgres_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$dir/initdb" ] || { say "no PostgreSQL server found: apt-get install postgresql"; return 1; }
    printf '%s\n' "$dir"
}

# A loopback port nobody listens on.
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { printf '%s\n' "$port"; return 0; }
    done
    say "no free port found"; return 1
}

# Starts a throwaway cluster; sets PG_BIN, PG_DIR, PG_PORT, PG_USER, PG_RUN and
# LEADFLOW_TEST_DATABASE_URL. Call stop_postgres (e.g. from a trap) to remove it.
# Extra server settings may be passed as arguments (-c name=value …).
start_postgres() {
    PG_BIN=$(postgres_bin) || return 1
    PG_DIR=$(mktemp -d /tmp/leadflow-pg.XXXXXX)
    PG_PORT=$(free_port) || return 1
    PG_RUN=()
    PG_USER=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        # initdb refuses root: run the cluster as a dedicated system user. The folder is
        # under /tmp because that user cannot read the checkout under /root.
        PG_USER=leadflow
        id -u "$PG_USER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
        chown "$PG_USER" "$PG_DIR"
        PG_RUN=(runuser -u "$PG_USER" --)
    fi
    chmod 700 "$PG_DIR"
    (cd /tmp && "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1) ||
        { say "initdb failed:"; cat "$PG_DIR/initdb.log" >&2; return 1; }
    (cd /tmp && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 $*" start >/dev/null) ||
        { say "PostgreSQL did not start:"; cat "$PG_DIR/server.log" >&2; return 1; }
    LEADFLOW_TEST_DATABASE_URL="postgresql://$PG_USER@127.0.0.1:$PG_PORT/postgres"
    export PG_BIN PG_DIR PG_PORT PG_USER LEADFLOW_TEST_DATABASE_URL
    export LEADFLOW_TEST_PG_BIN="$PG_BIN" LEADFLOW_TEST_PG_DATA="$PG_DIR/data" LEADFLOW_TEST_PG_USER="$PG_USER"
    say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)"
}

stop_postgres() {
    [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
    (cd /tmp && "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
    rm -rf "$PG_DIR"
}

# Starts a real SMTP server on a free loopback port (scripts/smtp-sink.py, Debian's
# python3-aiosmtpd) that writes each message it accepts to a folder; sets SMTP_PID and
# exports LEADFLOW_TEST_SMTP_PORT and LEADFLOW_TEST_SMTP_FOLDER. Stop it with stop_smtp.
start_smtp() {
    SMTP_DIR=$(mktemp -d /tmp/leadflow-smtp.XXXXXX)
    LEADFLOW_TEST_SMTP_PORT=$(free_port) || return 1
    LEADFLOW_TEST_SMTP_FOLDER="$SMTP_DIR/messages"
    # Debian's interpreter, where python3-aiosmtpd is installed (not a pyenv shim's).
    /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/smtp-sink.py" "$LEADFLOW_TEST_SMTP_PORT" "$LEADFLOW_TEST_SMTP_FOLDER" \
        >"$SMTP_DIR/server.log" 2>&1 &
    SMTP_PID=$!
    for _ in $(seq 1 100); do grep -q listening "$SMTP_DIR/server.log" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$SMTP_DIR/server.log" || { say "the SMTP server did not start:"; cat "$SMTP_DIR/server.log" >&2; return 1; }
    export LEADFLOW_TEST_SMTP_PORT LEADFLOW_TEST_SMTP_FOLDER
    say "SMTP server (aiosmtpd) on 127.0.0.1:$LEADFLOW_TEST_SMTP_PORT"
}

stop_smtp() {
    [ -n "${SMTP_PID:-}" ] && kill "$SMTP_PID" 2>/dev/null && wait "$SMTP_PID" 2>/dev/null || true
    SMTP_PID=
    [ -n "${SMTP_DIR:-}" ] && rm -rf "$SMTP_DIR"
    return 0
}
