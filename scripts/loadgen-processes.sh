#!/usr/bin/env bash
# Loadgen against separate processes on this machine: MODE=embedded (1 hub, 3 banks) or
# MODE=replicated (3 nats-server nodes, 2 hubs on one stream, 3 banks given both hubs).
# ARGS: extra loadgen flags. Prints the summary; docs/PERFORMANCE.md "The hub on a replicated log".
set -euo pipefail
C=${C:-target/release/corridor}
MODE=${MODE:-embedded}
W=$(mktemp -d /tmp/perf-XXXX)
BANKS=(BANKRUMMXXX BANKIRTHXXX BANKCNSHXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
$C pki init --dir $W/net --participants $(IFS=,; echo "${BANKS[*]}") >/dev/null
start() { # name, args...: starts a node, waits for its first line
  local name=$1; shift
  "$@" > $W/$name.out 2> $W/$name.err & pids+=($!)
  for i in $(seq 200); do grep -q listening $W/$name.out 2>/dev/null && return; sleep 0.05; done
  echo "$name did not start"; cat $W/$name.err; exit 1
}
HUBS=https://127.0.0.1:7400
if [ "$MODE" = replicated ]; then
  for i in 1 2 3; do
    mkdir -p $W/n$i
    cat > $W/n$i.conf <<CONF
server_name: n$i
listen: 127.0.0.1:424$i
max_payload: 8MB
jetstream { store_dir: "$W/n$i" }
cluster { name: perf, listen: 127.0.0.1:624$i, routes: [nats://127.0.0.1:6241, nats://127.0.0.1:6242, nats://127.0.0.1:6243] }
CONF
    nats-server -c $W/n$i.conf > $W/n$i.log 2>&1 & pids+=($!)
  done
  sleep 3
  LOG="--log nats://127.0.0.1:4241,127.0.0.1:4242,127.0.0.1:4243 --stream perf"
  start hub-a $C hub --dir $W/net --listen 127.0.0.1:7400 --data $W/hub-a $LOG
  for i in $(seq 200); do $C admin --dir $W/net --hub https://127.0.0.1:7400 fund --participant BANKRUMMXXX --currency CNY --amount 1 >/dev/null 2>&1 && break; sleep 0.1; done
  start hub-b $C hub --dir $W/net --listen 127.0.0.1:7401 --data $W/hub-b $LOG
  HUBS=https://127.0.0.1:7400,https://127.0.0.1:7401
else
  start hub $C hub --dir $W/net --listen 127.0.0.1:7400 --data $W/hub
fi
args=()
port=7410
for b in "${BANKS[@]}"; do
  $C admin --dir $W/net --hub https://127.0.0.1:7400 fund --participant $b --currency CNY --amount 10000000000 >/dev/null
  start $b $C bank --dir $W/net --bic $b --hub $HUBS --listen 127.0.0.1:$port --data $W/$b
  args+=(--bank $b=https://127.0.0.1:$port); port=$((port+1))
done
$C loadgen --dir $W/net --hub https://127.0.0.1:7400 "${args[@]}" --json ${ARGS:-} > $W/result.json 2> $W/loadgen.err || { cat $W/loadgen.err | tail -5; }
python3 - "$W/result.json" "$MODE" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
def g(*ks):
    x=r
    for k in ks:
        if not isinstance(x,dict) or k not in x: return None
        x=x[k]
    return x
print(sys.argv[2], json.dumps({k:r[k] for k in r if not isinstance(r[k],(list,dict))}))
for k in ('latency_ms','latency','cpu','ceilings'):
    if k in r: print(' ',k, json.dumps(r[k])[:600])
PY
