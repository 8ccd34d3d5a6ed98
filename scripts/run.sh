#!/usr/bin/env bash
# `make run`: runs the chat system on this machine against the services the
# CHAT_* variables name (by default the local ones). Builds ./cmd/chat into
# BIN_DIR (default bin), migrates the namespace and runs `chat all` (the API
# on CHAT_HTTP_ADDR, default :8080, and the workers) until Ctrl-C or until the
# server exits.
#
# Search: with CHAT_ELASTICSEARCH_URL set, or an Elasticsearch answering on
# 127.0.0.1:ZINC_PORT (default 9200, where chat looks when the variable is
# not set), that one is used and nothing is started. Otherwise the ZincSearch
# stand-in (tools/zincsearch) is built if missing and started there, with its
# data in ZINC_DIR/data-run (default bin/zinc), kept between runs so that a
# restart still finds the messages indexed before; it is stopped when this
# script ends. When something that is not Elasticsearch holds the port, the
# stand-in takes a free port instead, remembered in ZINC_DIR/run.port.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'run: %s\n' "$*" >&2; }

command -v curl >/dev/null || { say "curl is required"; exit 1; }

bin_dir=${BIN_DIR:-bin}
zinc_dir=${ZINC_DIR:-$bin_dir/zinc}
port=${ZINC_PORT:-9200}
host=127.0.0.1

# Elasticsearch, and the stand-in, send this header; the Go client insists on it.
is_elasticsearch() {
  curl -s -D - -o /dev/null --max-time 2 "$1/" 2>/dev/null | tr -d '\r' |
    grep -qi '^x-elastic-product: *elasticsearch$'
}

in_use() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! in_use "$p"; then echo "$p"; return; fi
  done
  return 1
}

# A zombie (an orphan not reaped yet) counts as gone.
gone() {
  ! kill -0 "$1" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# Which engine answers at URL, in words.
describe() {
  local url=$1 root pid
  root=$(curl -s --max-time 2 "$url/" | tr -d '\n')
  if [[ $root == *'"name":"zinc"'* ]]; then
    pid=$(cat "$zinc_dir/zincsearch-${url##*:}.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && ! gone "$pid"; then
      echo "the ZincSearch stand-in already running on $url (pid $pid: another make run's, which stops it, or one left running; kill $pid stops it)"
    else
      echo "the ZincSearch stand-in already running on $url"
    fi
  else
    local version
    version=$(sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p' <<<"$root")
    if [[ $root == *security_exception* ]]; then
      echo "Elasticsearch on $url, which asks for credentials: set CHAT_ELASTICSEARCH_URL=http://USER:PASSWORD@${url#*://}"
    else
      echo "Elasticsearch ${version:-?} on $url"
    fi
  fi
}

zinc_pid= # the stand-in this script started, and so stops
chat_pid=
errors=
cleanup() {
  local code=$?
  set +e
  [ -z "$errors" ] || rm -f "$errors"
  if [ -n "$chat_pid" ]; then
    # A second Ctrl-C cuts the server's graceful shutdown short, but the
    # stand-in is still stopped.
    trap 'kill -KILL "$chat_pid" 2>/dev/null' INT TERM
    kill -TERM "$chat_pid" 2>/dev/null
    while kill -0 "$chat_pid" 2>/dev/null; do
      wait "$chat_pid"
    done
  fi
  if [ -n "$zinc_pid" ]; then
    kill -TERM "$zinc_pid" 2>/dev/null
    for _ in $(seq 1 100); do
      gone "$zinc_pid" && break
      sleep 0.1
    done
    gone "$zinc_pid" || kill -KILL "$zinc_pid" 2>/dev/null
    # A stale pid file would name whatever process gets the pid next.
    rm -f "$zinc_dir/zincsearch-$port.pid"
    say "stopped the search stand-in (pid $zinc_pid)"
  fi
  exit "$code"
}
trap cleanup EXIT
# On Ctrl-C the server gets SIGINT too, and cleanup waits for its shutdown.
trap 'exit 130' INT
trap 'exit 143' TERM

# Built first, so that a compile error starts nothing.
mkdir -p "$bin_dir"
"${GO:-go}" build -o "$bin_dir/chat" ./cmd/chat

if [ -n "${CHAT_ELASTICSEARCH_URL:-}" ]; then
  if is_elasticsearch "$CHAT_ELASTICSEARCH_URL"; then
    say "search: $(describe "$CHAT_ELASTICSEARCH_URL") (CHAT_ELASTICSEARCH_URL)"
  else
    say "search: CHAT_ELASTICSEARCH_URL=$CHAT_ELASTICSEARCH_URL does not answer as Elasticsearch; search answers 503 until it does"
  fi
else
  url=http://$host:$port
  if ! is_elasticsearch "$url" && in_use "$port"; then
    taken=$port
    port=$(cat "$zinc_dir/run.port" 2>/dev/null || true)
    if [ -z "$port" ] || [ "$port" = "$taken" ] || { in_use "$port" && ! is_elasticsearch "http://$host:$port"; }; then
      port=$(free_port)
    fi
    mkdir -p "$zinc_dir"
    echo "$port" >"$zinc_dir/run.port"
    url=http://$host:$port
    say "$host:$taken is taken by something that is not Elasticsearch; search goes to $url (remembered in $zinc_dir/run.port); other chat commands need CHAT_ELASTICSEARCH_URL=$url"
  fi
  if is_elasticsearch "$url"; then
    say "search: $(describe "$url")"
  else
    mkdir -p "$zinc_dir"
    if [ ! -x "$zinc_dir/zincsearch" ]; then
      say "building the ZincSearch stand-in into $zinc_dir (the first build takes a minute or more)"
    fi
    errors=$(mktemp)
    if tools/zincsearch/start.sh "$zinc_dir" "$port" "$zinc_dir/data-run" >/dev/null 2>"$errors" &&
      zinc_pid=$(sed -n 's/^start.sh: zincsearch pid \([0-9]*\) .*/\1/p' "$errors") && [ -n "$zinc_pid" ]; then
      say "search: ZincSearch stand-in (tools/zincsearch, for tests and development) on $url, data in $zinc_dir/data-run, stopped with make run; for a real Elasticsearch 8 set CHAT_ELASTICSEARCH_URL or run one on $host:${ZINC_PORT:-9200}"
    elif is_elasticsearch "$url"; then
      # Another make run started one at the same moment: theirs to stop.
      say "search: $(describe "$url")"
    else
      cat "$errors" >&2
      say "could not start the search stand-in"
      exit 1
    fi
  fi
  export CHAT_ELASTICSEARCH_URL=$url
fi

"$bin_dir/chat" migrate
"$bin_dir/chat" all &
chat_pid=$!
status=0
wait "$chat_pid" || status=$?
chat_pid=
[ "$status" -eq 0 ] || say "chat all exited with status $status"
exit "$status"
