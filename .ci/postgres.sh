#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL 15 server for tests and benchmarks.
#   .ci/postgres.sh start DIR   -> prints the connection URL on stdout
#   .ci/postgres.sh stop DIR
# PostgreSQL refuses to run as root, so the server runs as the `postgres` user when we are root.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}

bin=""
for cand in /usr/local/bin /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  if [ -x "$cand/pg_ctl" ]; then bin=$cand; break; fi
done
if [ -z "$bin" ]; then
  bin=$(dirname "$(command -v pg_ctl || true)")
fi
[ -x "$bin/pg_ctl" ] || { echo "pg_ctl not found; install PostgreSQL 15" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
