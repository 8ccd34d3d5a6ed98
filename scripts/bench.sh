#!/usr/bin/env bash
# `make bench`: measures the system end to end on this machine. Builds
# bin/chat and bin/chatload, runs `chat all` on a namespace of its own (search
# off: Elasticsearch runs on its own hosts in production) against the local
# MariaDB, Redis and RabbitMQ, runs chatload against it, and prints
# chatload's report with the CPU that each server process spent per create
# over the measured window. Removes the namespace afterwards.
#
#   scripts/bench.sh                         # 64 clients, one chat, 20 s
#   scripts/bench.sh -apps 32 -chats 4       # the same, spread over 128 chats
#   scripts/bench.sh -rate 4000 -duration 5m # open loop
#   BENCH_PROFILE=cpu.pprof scripts/bench.sh  # and CPU and allocation profiles of chat all
#   BENCH_CHAT=/tmp/chat-old scripts/bench.sh # another build of chat, same load
#   BENCH_PROCESS=serve scripts/bench.sh     # the accepting side alone: chat serve,
#                                            # no writer, the queues unbounded
#
# Arguments are chatload's and come after the defaults, so they win.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bench: %s\n' "$*" >&2; }

ns=bench$(od -An -N4 -tx4 /dev/urandom | tr -d " ")
port=${BENCH_PORT:-18080}
export CHAT_NAMESPACE=$ns
export CHAT_HTTP_ADDR=127.0.0.1:$port
export CHAT_MYSQL_DSN="root@tcp(127.0.0.1:3306)/chat_$ns?parseTime=true"
export CHAT_ELASTICSEARCH_URL=${BENCH_SEARCH_URL:-http://127.0.0.1:1}
export CHAT_LOG_LEVEL=${CHAT_LOG_LEVEL:-warn}
[ -z "${BENCH_PROFILE:-}" ] || export CHAT_DEBUG_ADDR=127.0.0.1:$((port + 1))
# BENCH_PROCESS=serve runs `chat serve` alone: what accepting a create costs
# (HTTP, the number, the confirmed publish) without storing or projecting
# it. Nothing becomes readable, so the probe and the read-back are off, and
# the queues are declared unbounded so that the backlog does not refuse.
process=${BENCH_PROCESS:-all}
readback=(-probe 250ms -check-readable)
ready=readyz
case $process in
  all) ;;
  serve) export CHAT_STORE_QUEUE_BYTES=0; readback=(-probe 0); ready=healthz ;;
  *) say "BENCH_PROCESS is all or serve, not $process"; exit 2 ;;
esac

mkdir -p bin
"${GO:-go}" build -o bin/chat ./cmd/chat
"${GO:-go}" build -o bin/chatload ./cmd/chatload
# BENCH_CHAT measures another build of chat (an older release, say) with
# this load generator, in the same sitting.
chat=${BENCH_CHAT:-bin/chat}

chat_pid=
cleanup() {
  set +e
  if [ -n "$chat_pid" ]; then
    kill -TERM "$chat_pid" 2>/dev/null
    wait "$chat_pid" 2>/dev/null
  fi
  mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS \`chat_$ns\`" 2>/dev/null
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$ns:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null
  # One call deletes every queue of the namespace and its exchange.
  rabbitmqctl -q eval "P = <<\"$ns.\">>, [rabbit_amqqueue:delete(Q, false, false, <<\"bench\">>) || Q <- rabbit_amqqueue:list(<<\"/\">>), binary:longest_common_prefix([element(4, amqqueue:get_name(Q)), P]) =:= byte_size(P)], rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$ns.events\">>), false, <<\"bench\">>)." >/dev/null 2>&1
  say "removed namespace $ns"
}
trap cleanup EXIT

"$chat" migrate >/dev/null
"$chat" "$process" 2>bin/bench-$ns.log &
chat_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/$ready" >/dev/null 2>&1 && break
  sleep 0.2
done

pid_of() { pgrep -o -x "$1" || pgrep -o -f "$2" || true; }
procs="chat=$chat_pid"
for p in "rabbitmq=$(pid_of beam.smp 'beam.smp.*rabbit')" "mariadb=$(pid_of mariadbd mysqld)" "redis=$(pgrep -o -f 'redis-server .*:6379' || true)"; do
  [ -n "${p#*=}" ] && procs="$procs,$p"
done
say "namespace $ns, chat $process pid $chat_pid, CPU of $procs"

if [ -n "${BENCH_PROFILE:-}" ]; then
  # A CPU profile of chat all over 15 s of the measured window.
  (sleep 8; curl -s -o "$BENCH_PROFILE" "http://127.0.0.1:$((port + 1))/debug/pprof/profile?seconds=15"
   curl -s -o "$BENCH_PROFILE.allocs" "http://127.0.0.1:$((port + 1))/debug/pprof/allocs") &
fi
bin/chatload -url "http://127.0.0.1:$port" -concurrency 64 -apps 1 -chats 1 -duration 20s -warmup 5s \
  -lag-sample 0 "${readback[@]}" -cpu "$procs" "$@"
