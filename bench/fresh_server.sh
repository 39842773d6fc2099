# Sourced by the bench scripts: starts `agentwire serve --demo-data` ($SERVER) on a fresh
# database, waits until it serves, and sets `dir`, `secret`, `pid` and `url`
# (http://127.0.0.1:PORT). The server, the directory and the database go when the script exits.
#
# The database is a file in a temporary directory, or with `POSTGRES=URL` (a PostgreSQL
# database the user may create databases from, e.g. postgres://postgres@127.0.0.1:5432/postgres)
# a new PostgreSQL database beside it, created and dropped with psql. URL ends with the database
# name: its last path segment is replaced, so it must carry no `?parameters`.
dir=$(mktemp -d /tmp/agentwire-bench.XXXXXX)
secret=$(openssl rand -hex 32)
database="sqlite://$dir/a.db"
drop_database=:
if [[ -n "${POSTGRES:-}" ]]; then
    bench_db="agentwire_bench_$(basename "$dir" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
    psql -q "$POSTGRES" -c "CREATE DATABASE $bench_db"
    database="${POSTGRES%/*}/$bench_db"
    drop_database="psql -q \"$POSTGRES\" -c \"DROP DATABASE IF EXISTS $bench_db\""
fi
AGENTWIRE_JWT_SECRET=$secret NO_COLOR=1 "$SERVER" serve --demo-data \
    --database "$database" --listen 127.0.0.1:0 >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; eval "$drop_database"; rm -rf "$dir"' EXIT
until grep -qs 'agentwire is serving' "$dir/serve.log"; do
    kill -0 $pid 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
    sleep 0.1
done
url=$(grep -o 'ws://[0-9.:]*/ws' "$dir/serve.log" | head -n 1 | sed 's|/ws$||; s|^ws://|http://|')
