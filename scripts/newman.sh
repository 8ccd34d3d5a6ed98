#!/usr/bin/env bash
# Runs the Postman collection (postman/chat.postman_collection.json) with
# Newman against a fresh server:
#
#   1. installs Newman locally if missing (scripts/node-tools.sh);
#   2. builds ./cmd/chat;
#   3. makes a new namespace and database (newman<random>, chat_<namespace>)
#      on the services the CHAT_* variables name (by default the local ones),
#      and migrates it;
#   4. starts `chat all` on a free local port and waits for /readyz;
#   5. runs the collection with baseUrl pointing at it;
#   6. stops the server and removes the database, the namespace's Redis keys,
#      its RabbitMQ queues and exchange (with rabbitmqctl, when the broker is
#      local) and its Elasticsearch indices.
#
# CHAT_MYSQL_DSN, CHAT_REDIS_URL, CHAT_AMQP_URL and CHAT_ELASTICSEARCH_URL
# pass through to the server. Exits non-zero when a request's tests fail.
#
# With NEWMAN_BASE_URL set, it only runs the collection against that server
# (for example http://localhost:8080 after `docker compose up`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[newman] %s\n' "$*" >&2; }

bin=$(scripts/node-tools.sh)
collection=postman/chat.postman_collection.json
environment=postman/local.postman_environment.json

run_collection() { # base URL
  "$bin/newman" run "$collection" --environment "$environment" \
    --env-var "baseUrl=$1" --timeout-request 30000 --reporters cli
}

if [ -n "${NEWMAN_BASE_URL:-}" ]; then
  run_collection "$NEWMAN_BASE_URL"
  exit
fi

command -v curl >/dev/null || { log "curl is required"; exit 1; }

ns=newman$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')
base_dsn=${CHAT_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/chat?parseTime=true}
redis_url=${CHAT_REDIS_URL:-redis://127.0.0.1:6379/0}
amqp_url=${CHAT_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
es_url=${CHAT_ELASTICSEARCH_URL:-http://127.0.0.1:9200}

# The DSN is [user[:password]@][tcp(host:port)]/dbname[?params]; the
# namespace gets a database of its own.
dsn_head=${base_dsn%%\?*}
dsn_params=${base_dsn#"$dsn_head"}
dsn_server=${dsn_head%/*}
database=chat_$ns
dsn="$dsn_server/$database$dsn_params"

work=$(mktemp -d)
pid=
cleanup() {
  local code=$?
  set +e
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
  fi
  if [ "$code" -ne 0 ] && [ -f "$work/chat.log" ]; then
    log "server log (last 50 lines):"
    tail -n 50 "$work/chat.log" >&2
  fi
  log "removing namespace $ns"
  drop_database
  delete_redis_keys
  delete_broker_topology
  delete_indices
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_database() {
  command -v mysql >/dev/null || { log "mysql client missing; database $database left behind"; return; }
  local re='^(([^:@]*)(:(.*))?@)?(tcp\((.*)\))?$' user=root pass= host=127.0.0.1 port=3306
  if [[ $dsn_server =~ $re ]]; then
    user=${BASH_REMATCH[2]:-root}
    pass=${BASH_REMATCH[4]}
    if [ -n "${BASH_REMATCH[6]}" ]; then
      host=${BASH_REMATCH[6]%:*}
      [[ ${BASH_REMATCH[6]} == *:* ]] && port=${BASH_REMATCH[6]##*:}
    fi
  fi
  MYSQL_PWD=$pass mysql --protocol=tcp -h"$host" -P"$port" -u"$user" \
    -e "DROP DATABASE IF EXISTS \`$database\`" || log "could not drop database $database"
}

delete_redis_keys() {
  command -v redis-cli >/dev/null || { log "redis-cli missing; keys $ns:* left behind"; return; }
  redis-cli -u "$redis_url" --scan --pattern "$ns:*" | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null ||
    log "could not delete Redis keys $ns:*"
}

delete_broker_topology() {
  # rabbitmqctl reaches only a broker on this machine.
  local rest=${amqp_url#*://}
  rest=${rest#*@}
  case ${rest%%[:/]*} in localhost | 127.0.0.1 | '') ;; *) return ;; esac
  command -v rabbitmqctl >/dev/null || { log "rabbitmqctl missing; queues $ns.* left behind"; return; }
  local vhost=/
  if [[ $rest == */?* ]]; then
    vhost=${rest#*/}
    vhost=${vhost//%2F//}
    vhost=${vhost//%2f//}
  fi
  local q
  for q in $(rabbitmqctl -q list_queues --vhost "$vhost" name 2>/dev/null | grep "^$ns\." || true); do
    rabbitmqctl -q delete_queue --vhost "$vhost" "$q" >/dev/null 2>&1 || log "could not delete queue $q"
  done
  # rabbitmqctl has no command to delete an exchange; ask the broker directly.
  rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"$vhost\">>, exchange, <<\"$ns.events\">>), false, <<\"newman\">>)." \
    >/dev/null 2>&1 || true
}

delete_indices() {
  curl -fsS -o /dev/null --max-time 2 "$es_url/" 2>/dev/null || return 0
  local index
  for index in $(curl -fsS --max-time 5 "$es_url/_alias" 2>/dev/null | grep -o "\"$ns[^\"]*\"" | tr -d '"' | sort -u); do
    curl -fsS -o /dev/null --max-time 5 -X DELETE "$es_url/$index" 2>/dev/null || true
  done
  for index in $(curl -fsS --max-time 5 "$es_url/_index_template" 2>/dev/null | grep -o "\"$ns[^\"]*\"" | tr -d '"' | sort -u); do
    curl -fsS -o /dev/null --max-time 5 -X DELETE "$es_url/_index_template/$index" 2>/dev/null || true
  done
}

log "building ./cmd/chat"
go build -o "$work/chat" ./cmd/chat

export CHAT_NAMESPACE=$ns CHAT_MYSQL_DSN=$dsn
export CHAT_REDIS_URL=$redis_url CHAT_AMQP_URL=$amqp_url CHAT_ELASTICSEARCH_URL=$es_url
export CHAT_STORE_PREFETCH=${CHAT_STORE_PREFETCH:-32} CHAT_PUBLISH_CHANNELS=${CHAT_PUBLISH_CHANNELS:-8}
export CHAT_SHUTDOWN_TIMEOUT=${CHAT_SHUTDOWN_TIMEOUT:-10s}

log "namespace $ns, database $database"
"$work/chat" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

# Another process may take the port between the check and the bind; then
# the server exits at once and another port is tried.
for attempt in 1 2 3; do
  port=$(free_port)
  CHAT_HTTP_ADDR=127.0.0.1:$port "$work/chat" all >"$work/chat.log" 2>&1 &
  pid=$!
  log "chat all on 127.0.0.1:$port (pid $pid)"
  ready=
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.2
  done
  [ -n "$ready" ] && break
  if kill -0 "$pid" 2>/dev/null; then
    log "the server did not become ready within 60 s"
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  pid=
  grep -q "address already in use" "$work/chat.log" || { log "the server exited"; cat "$work/chat.log" >&2; exit 1; }
  log "port $port was taken; trying another"
done
[ -n "$ready" ] || { log "could not start the server"; exit 1; }

run_collection "http://127.0.0.1:$port"
