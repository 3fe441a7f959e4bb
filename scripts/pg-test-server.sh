#!/usr/bin/env bash
# A private, throw-away PostgreSQL server on 127.0.0.1 for the test suite (trust auth, temp folder).
# Usage: scripts/pg-test-server.sh start|stop   (prints the database URL on start)
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
ROOT=${PG_TEST_ROOT:-/tmp/complaints-pg}
PORT=${PG_TEST_PORT:-55432}
case "${1:-start}" in
  start)
    if [ ! -s "$ROOT/data/PG_VERSION" ]; then
      install -d -o postgres -g postgres "$ROOT" "$ROOT/data" "$ROOT/sock"
      su postgres -c "$BIN/initdb -D $ROOT/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
    fi
    if ! su postgres -c "$BIN/pg_ctl -D $ROOT/data status" >/dev/null 2>&1; then
      su postgres -c "$BIN/pg_ctl -D $ROOT/data -l $ROOT/data/server.log \
        -o '-c listen_addresses=127.0.0.1 -p $PORT -k $ROOT/sock -c fsync=off -c max_connections=200' -w start" >/dev/null
    fi
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    su postgres -c "$BIN/pg_ctl -D $ROOT/data -m fast -w stop" >/dev/null 2>&1 || true
    ;;
esac
