# Sourced by the bench scripts: starts `agentwire serve --demo-data` ($SERVER) on a file database
# in a temporary directory, waits until it serves, and sets `dir`, `secret`, `pid` and `url`
# (http://127.0.0.1:PORT). The server and the directory go when the script exits.
dir=$(mktemp -d /tmp/agentwire-bench.XXXXXX)
secret=$(openssl rand -hex 32)
AGENTWIRE_JWT_SECRET=$secret NO_COLOR=1 "$SERVER" serve --demo-data \
    --database "sqlite://$dir/a.db" --listen 127.0.0.1:0 >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until grep -qs 'agentwire is serving' "$dir/serve.log"; do
    kill -0 $pid 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
    sleep 0.1
done
url=$(grep -o 'ws://[0-9.:]*/ws' "$dir/serve.log" | head -n 1 | sed 's|/ws$||; s|^ws://|http://|')
