#!/bin/sh
# Forms the Redis Cluster of docker-compose.cluster.yml (service
# redis-cluster-init) and, on every later start, introduces its nodes to one
# another again. Safe to run any number of times.
#
#   REDIS_NODES     the nodes, host:port, space-separated (six for three
#                   masters with one replica each)
#   REDIS_REPLICAS  replicas per master when the cluster is created (1)
#   REDIS_WAIT      seconds to wait for the nodes, then for the cluster (120)
#
# The first run, when no node serves a slot yet, runs
# `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`. Later
# runs create nothing: the nodes keep the cluster in nodes.conf on their
# volumes. The cluster bus knows its peers by IP address, and a container
# that is re-created may get another one, so each later run has every node
# meet every other at its current address (CLUSTER MEET to a known node only
# updates its address). Either way the script exits 0 once every node is
# connected to all the others and reports cluster_state:ok, and 1 if that
# does not happen within REDIS_WAIT seconds.
#
# A node whose data was lost (a new, empty node) is left alone: add it back
# with `redis-cli --cluster add-node <new> <existing> --cluster-slave` and
# forget the old node id with `redis-cli --cluster call <existing> CLUSTER FORGET <id>`.
set -eu

: "${REDIS_NODES:?name the nodes as host:port, space-separated}"
replicas=${REDIS_REPLICAS:-1}
wait_s=${REDIS_WAIT:-120}

log() { echo "redis-cluster-init: $*"; }

cli() { # host:port, redis-cli arguments...
	node=$1
	shift
	redis-cli -h "${node%:*}" -p "${node##*:}" "$@"
}

# field host:port name: one field of CLUSTER INFO.
field() {
	cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

# address host:port: the node's IPv4 address and port. CLUSTER MEET and
# --cluster create take addresses, not names.
address() {
	ip=$(getent ahostsv4 "${1%:*}" | sed -n '1s/ .*//p')
	[ -n "$ip" ] || return 1
	echo "$ip:${1##*:}"
}

# until what command...: retries the command every second for wait_s seconds.
until_ok() {
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -ge "$wait_s" ]; then
			log "$what: not after ${wait_s}s"
			return 1
		fi
		sleep 1
	done
}

# settled host:port: the node reports cluster_state:ok and is connected to
# every member at its current address. A node reports ok while its peers
# are only suspected (fail?), so the state alone is not enough.
settled() {
	[ "$(field "$1" cluster_state)" = ok ] || return 1
	known=$(cli "$1" cluster nodes | tr -d '\r')
	for a in $addresses; do
		printf '%s\n' "$known" | grep -F " $a@" | grep -v fail | grep -q ' connected' || return 1
	done
}

for n in $REDIS_NODES; do
	until_ok "$n answers" cli "$n" ping
done

formed=""
for n in $REDIS_NODES; do
	if [ "$(field "$n" cluster_slots_assigned)" != 0 ]; then
		formed=yes
	fi
done

# The members: every node, or once the cluster exists, every node that knows
# of it.
members=""
addresses=""
for n in $REDIS_NODES; do
	if [ -n "$formed" ] && [ "$(field "$n" cluster_known_nodes)" = 1 ]; then
		log "$n is empty (its data was lost?): not added back; see the top of this script"
		continue
	fi
	a=$(address "$n") || {
		log "$n: cannot resolve ${n%:*}"
		exit 1
	}
	members="$members $n"
	addresses="$addresses $a"
done

if [ -z "$formed" ]; then
	log "creating the cluster of$addresses"
	# shellcheck disable=SC2086 # one argument per address
	redis-cli --cluster create $addresses --cluster-replicas "$replicas" --cluster-yes
else
	log "the cluster exists; meeting$members at$addresses"
	for n in $members; do
		for a in $addresses; do
			cli "$n" cluster meet "${a%:*}" "${a##*:}" >/dev/null
		done
	done
fi

for n in $members; do
	until_ok "$n connected to every member, cluster_state:ok" settled "$n"
done
log "cluster ok"
