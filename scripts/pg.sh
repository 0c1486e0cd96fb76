# Shared helpers: find or start a PostgreSQL server. Sourced by scripts/test
# and scripts/run; not meant to be run on its own.

# Prints the directory of the newest PostgreSQL server binaries, or nothing.
pg_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
    fi
}

# Installs Debian's postgresql package when no server binaries are found
# and we are allowed to (root with apt-get).
pg_ensure_binaries() {
    if [ -n "$(pg_bindir)" ]; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> no PostgreSQL server binaries found; installing Debian's postgresql package" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    if [ -z "$(pg_bindir)" ]; then
        echo "error: no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in /usr/lib/postgresql/*/bin." >&2
        echo "       Install them, e.g. on Debian: sudo apt-get install postgresql" >&2
        return 1
    fi
}

# Succeeds when a server answers at the given URL.
pg_answers() {
    local url=$1
    if command -v psql >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=3 psql "$url" -qtAc 'select 1' >/dev/null 2>&1
        return
    fi
    # No client: fall back to a TCP probe of host:port.
    local hostport host port
    hostport=$(echo "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
    host=${hostport%:*}
    port=${hostport##*:}
    [ "$host" = "$hostport" ] && port=5432
    (exec 3<>"/dev/tcp/${host:-127.0.0.1}/${port}") 2>/dev/null
}

# The unprivileged user that runs initdb/postgres when we are root
# (PostgreSQL refuses to run as root).
pg_run_user() {
    if [ "$(id -u)" != 0 ]; then
        return
    fi
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres >&2
    fi
    echo postgres
}

# Runs a command as the PostgreSQL user (or as ourselves when not root).
pg_as_user() {
    local user
    user=$(pg_run_user)
    if [ -n "$user" ]; then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

# Picks a free TCP port on 127.0.0.1.
pg_free_port() {
    local port
    for port in $(seq 55432 55532); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    return 1
}

# Starts a throw-away cluster in $1 on a free port; prints its URL.
# The cluster trades durability for speed (fsync off): it only holds test data.
pg_start_ephemeral() {
    local dir=$1 bindir port user
    pg_ensure_binaries || return 1
    bindir=$(pg_bindir)
    port=$(pg_free_port) || { echo "error: no free port for PostgreSQL" >&2; return 1; }
    mkdir -p "$dir"
    user=$(pg_run_user)
    [ -n "$user" ] && chown "$user" "$dir"
    chmod 700 "$dir"
    pg_as_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || pg_as_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    pg_as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >&2 || { cat "$dir/server.log" >&2; return 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop_ephemeral() {
    local dir=$1 bindir
    bindir=$(pg_bindir)
    if [ -n "$bindir" ] && [ -d "$dir/data" ]; then
        pg_as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}
