#!/usr/bin/env bash
# Makes sure the local services the chat system and its tests use answer on
# their standard ports: MariaDB (127.0.0.1:3306), Redis (6379) and RabbitMQ
# (5672). A service that answers is left as it is, never restarted; one that
# is installed and down is started and waited for; one that is not installed
# is named in one line with the apt command that installs it. A service whose
# CHAT_* variable names another host is not looked at. Exits non-zero unless
# every service it looks at answers. `make run`, `make test` and .ci/run call
# it first.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }

host=127.0.0.1
wait_seconds=${SERVICES_WAIT:-60}

# Each probe speaks the first words of the service's protocol, so a port
# that is open before its server accepts connections does not count.
answers() { # port, bytes to send (printf format), bytes to read
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "$2" >&3 && head -c "$3" <&3' "$host" "$@" 2>/dev/null |
    od -An -tx1 | tr -d ' \n'
}
# The server's greeting: a packet header, then protocol version 10.
mariadb_up() { [[ $(answers 3306 '' 5) == ????????0a ]]; }
# Any reply to PING (+PONG, or an error asking for a password).
redis_up() { [[ $(answers 6379 'PING\r\n' 1) == 2[bd] ]]; }
# Connection.Start, a method frame, in reply to the AMQP 0-9-1 header.
rabbitmq_up() { [[ $(answers 5672 'AMQP\0\0\011\001' 1) == 01 ]]; }

start_mariadb() {
  if [ "$(id -u)" -ne 0 ]; then
    say "MariaDB is installed but not running: start it as root (sudo $0) or with the system's service manager"
    return 1
  fi
  mkdir -p /run/mysqld && chown mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
}
start_redis() { redis-server --daemonize yes --bind "$host" --port 6379 --save "" --appendonly no >/dev/null; }
start_rabbitmq() { rabbitmq-server -detached; }

mariadb_installed() { [ -x /usr/sbin/mariadbd ]; }
redis_installed() { command -v redis-server >/dev/null; }
rabbitmq_installed() { command -v rabbitmq-server >/dev/null; }

# Per service: its name, the variable that may name another host, its
# port, and the Debian package that installs it.
services=(mariadb redis rabbitmq)
declare -A name=([mariadb]=MariaDB [redis]=Redis [rabbitmq]=RabbitMQ)
declare -A variable=([mariadb]=CHAT_MYSQL_DSN [redis]=CHAT_REDIS_URL [rabbitmq]=CHAT_AMQP_URL)
declare -A port=([mariadb]=3306 [redis]=6379 [rabbitmq]=5672)
declare -A package=([mariadb]=mariadb-server [redis]=redis-server [rabbitmq]=rabbitmq-server)

status=0
started=()
for s in "${services[@]}"; do
  value=${!variable[$s]:-}
  case $value in
  "" | *"$host:${port[$s]}"* | *"localhost:${port[$s]}"*) ;;
  *)
    say "${name[$s]}: ${variable[$s]} names another server; not looked at"
    continue
    ;;
  esac
  if "${s}_up"; then
    say "${name[$s]} is up on $host:${port[$s]}"
  elif ! "${s}_installed"; then
    say "${name[$s]} is not running on $host:${port[$s]} and not installed: apt-get install -y ${package[$s]}"
    status=1
  else
    say "starting ${name[$s]}"
    if "start_$s"; then started+=("$s"); else status=1; fi
  fi
done

# Those started boot together; each is waited for in turn.
deadline=$((SECONDS + wait_seconds))
for s in "${started[@]}"; do
  until "${s}_up"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "${name[$s]} did not answer on $host:${port[$s]} within ${wait_seconds}s"
      status=1
      continue 2
    fi
    sleep 1
  done
  say "${name[$s]} is up on $host:${port[$s]}"
done
exit "$status"
