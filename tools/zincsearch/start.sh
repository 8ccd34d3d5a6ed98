#!/usr/bin/env bash
# Start the ZincSearch Elasticsearch stand-in in the background and print its
# URL on stdout, e.g.:
#
#   export CHAT_ELASTICSEARCH_URL=$(tools/zincsearch/start.sh /tmp/zinc)        # free port
#   export CHAT_ELASTICSEARCH_URL=$(tools/zincsearch/start.sh /tmp/zinc 4080)   # given port
#
# Usage: start.sh BIN_DIR [PORT [DATA_DIR]]
#
#   BIN_DIR   where the binary is built (go build -o BIN_DIR/zincsearch) if it
#             is missing (set ZINC_REBUILD=1 to rebuild), and where the
#             pid, log and default data directory go.
#   PORT      port on ZINC_HOST (default 127.0.0.1). If something already
#             answers there, nothing is started and the URL is printed.
#             Without PORT a free port is used; the URL is remembered in
#             BIN_DIR/zincsearch.url and reused while it answers.
#   DATA_DIR  default BIN_DIR/data-PORT (given port) or a new
#             BIN_DIR/data.XXXXXX (free port).
#
# Files: BIN_DIR/zincsearch-PORT.pid and BIN_DIR/zincsearch-PORT.log.
# Stop:  kill "$(cat BIN_DIR/zincsearch-PORT.pid)"
set -euo pipefail

die() { echo "start.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 3 ] || die "usage: start.sh BIN_DIR [PORT [DATA_DIR]]"
command -v curl >/dev/null || die "curl is required"

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
bin_dir=$(cd "$1" && pwd)
port=${2:-}
data_dir=${3:-}
host=${ZINC_HOST:-127.0.0.1}
timeout=${ZINC_START_TIMEOUT:-30}
bin=$bin_dir/zincsearch

answers() { curl -s -o /dev/null --max-time 2 "$1/"; }

# Idempotency: reuse a server that already answers.
if [ -n "$port" ]; then
	url=http://$host:$port
	if answers "$url"; then
		echo "$url"
		exit 0
	fi
elif [ -s "$bin_dir/zincsearch.url" ]; then
	url=$(cat "$bin_dir/zincsearch.url")
	if answers "$url"; then
		echo "$url"
		exit 0
	fi
fi

if [ ! -x "$bin" ] || [ -n "${ZINC_REBUILD:-}" ]; then
	echo "start.sh: building $bin" >&2
	(cd "$src_dir" && go build -o "$bin" .) >&2 || die "build failed"
fi

if [ -z "$data_dir" ]; then
	if [ -n "$port" ]; then
		data_dir=$bin_dir/data-$port
	else
		data_dir=$(mktemp -d "$bin_dir/data.XXXXXX")
	fi
fi

# Log to a temporary name until the port is known.
log=$(mktemp "$bin_dir/zincsearch-start.XXXXXX")
launch=("$bin" -addr "$host:${port:-0}" -data "$data_dir")
if command -v setsid >/dev/null; then
	launch=(setsid "${launch[@]}")
fi
"${launch[@]}" </dev/null >"$log" 2>&1 &
pid=$!

deadline=$((SECONDS + timeout))
addr=
while :; do
	if ! kill -0 "$pid" 2>/dev/null; then
		tail -n 20 "$log" >&2
		die "zincsearch exited (log: $log)"
	fi
	if [ -z "$addr" ]; then
		addr=$(sed -n 's/^listening on //p' "$log" | head -n 1)
	fi
	if [ -n "$addr" ] && answers "http://$addr"; then
		break
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		tail -n 20 "$log" >&2
		kill "$pid" 2>/dev/null || true
		die "zincsearch did not answer within ${timeout}s (log: $log)"
	fi
	sleep 0.1
done

port=${addr##*:}
mv -f "$log" "$bin_dir/zincsearch-$port.log"
echo "$pid" >"$bin_dir/zincsearch-$port.pid"
url=http://$addr
# Only a free port is remembered: a given port is the caller's to remember.
if [ -z "${2:-}" ]; then
	echo "$url" >"$bin_dir/zincsearch.url"
fi
echo "start.sh: zincsearch pid $pid on $url, data $data_dir, log $bin_dir/zincsearch-$port.log" >&2
echo "$url"
