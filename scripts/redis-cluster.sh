#!/usr/bin/env bash
# A real Redis Cluster on loopback for the tests and benchmarks: 3 masters
# and 3 replicas from Debian's redis-server, made with `redis-cli --cluster
# create`. Usage:
#   scripts/redis-cluster.sh up DIR FIRST_PORT   # ports FIRST_PORT..+5; waits for cluster_state:ok
#                                                # and every replica in sync with its master
#   scripts/redis-cluster.sh down DIR            # stops the nodes started in DIR
# Each node's config, log and pid live in DIR, and its data files in
# DIR/PORT: a replica's first sync writes the master's snapshot to its
# working directory and loads it from there, so nodes sharing one directory
# load each other's shards (seen: a replica promoted with another shard's
# keys). `cluster-node-timeout` is 2 s, so a failed master's replica takes
# over within a few seconds.
set -euo pipefail
what=${1:?up or down}
dir=${2:?a directory for the nodes}

down() {
  local pidfile
  for pidfile in "$dir"/node-*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

state_ok() {
  redis-cli -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

up() {
  local first=${1:?the first port} port nodes=() i
  mkdir -p "$dir"
  for i in 0 1 2 3 4 5; do
    port=$((first + i))
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" \
      --cluster-node-timeout 2000 --dir "$dir/$port" --save '' --appendonly no \
      --repl-diskless-sync-delay 0 \
      --logfile "$dir/node-$port.log" --pidfile "$dir/node-$port.pid"
    nodes+=("127.0.0.1:$port")
  done
  for port in "${nodes[@]##*:}"; do
    for _ in $(seq 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    exit 1
  }
  for port in "${nodes[@]##*:}"; do
    await state_ok "$port" 200 "node $port never reached cluster_state:ok"
  done
  # A failover asked for before a replica's first sync would wait for it, or
  # time out (`repl-diskless-sync-delay` is 0, not 5 s, so it starts at once).
  for port in "${nodes[@]##*:}"; do
    await in_sync "$port" 300 "replica $port never came in sync with its master"
  done
}

# `await CHECK PORT TRIES WHY`: CHECK PORT every 50 ms until it holds, at
# most TRIES times; else the script fails saying WHY.
await() {
  local _
  for _ in $(seq "$3"); do
    "$1" "$2" && return 0
    sleep 0.05
  done
  echo "redis-cluster.sh: $4" >&2
  exit 1
}

# A master, or a replica whose link to its master is up.
in_sync() {
  local info
  info=$(redis-cli -p "$1" info replication 2>/dev/null)
  grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}

case "$what" in
  up) up "${3:-}" ;;
  down) down ;;
  *) echo "redis-cluster.sh: up DIR FIRST_PORT | down DIR" >&2; exit 2 ;;
esac
