#!/usr/bin/env bash
# Starts the three nodes of the console's 3-node home NATS (n1.conf, n2.conf, n3.conf:
# clients on 127.0.0.1:4222-4224, stores under ./data/home-cluster) in the foreground;
# Ctrl-C stops all three. `make home-cluster` runs it with the pinned nats-server.
set -euo pipefail
bin=${NATS_SERVER_BIN:-nats-server}
here=$(cd "$(dirname "$0")" && pwd)
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait; }
trap stop EXIT INT TERM
for n in 1 2 3; do
  "$bin" -c "$here/n$n.conf" &
  pids+=("$!")
done
echo "home NATS: nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 (Ctrl-C stops it)" >&2
# A node that exits (or is killed, to see the console ride it out) leaves the other two
# running; this returns when all three have.
wait
