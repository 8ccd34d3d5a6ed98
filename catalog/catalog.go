// Package catalog names what a namespace owns in MySQL, RabbitMQ,
// Elasticsearch and Redis, so that every name is spelt in one place.
package catalog

import (
	"strconv"
	"strings"

	"github.com/chatsys/chat/keyslot"
)

// Catalog is the names of one namespace. A namespace is at most 40
// characters (config checks it), so every lock name below stays within
// MySQL's 64.
type Catalog struct{ ns string }

// New returns the catalogue of a namespace.
func New(namespace string) Catalog { return Catalog{ns: namespace} }

// Namespace is the namespace the names belong to.
func (c Catalog) Namespace() string { return c.ns }

// MySQL tables.

func (c Catalog) table(name string) string { return c.ns + "_" + name }

// SchemaMigrations is the table of applied migrations.
func (c Catalog) SchemaMigrations() string { return c.table("schema_migrations") }

// Events is the event store's table.
func (c Catalog) Events() string { return c.table("events") }

// Erasures names the deleted message streams, whose events are erased.
func (c Catalog) Erasures() string { return c.table("erasures") }

// Partitions is the table of the event log's partitions: head and writer lease.
func (c Catalog) Partitions() string { return c.table("partitions") }

// Workers is the table of the live `work` processes.
func (c Catalog) Workers() string { return c.table("workers") }

// Checkpoints is the table of the projectors' named positions.
func (c Catalog) Checkpoints() string { return c.table("checkpoints") }

// SearchParked is the table of events the search index refused for good.
func (c Catalog) SearchParked() string { return c.table("search_parked") }

// DoctorProbe is the scratch table `chat doctor` probes privileges on.
func (c Catalog) DoctorProbe() string { return c.table("doctor_probe") }

// ReadTables is one set of read tables with the position they are at.
type ReadTables struct {
	Applications, Chats, Messages, Position string
}

// All lists the set's tables, position included.
func (t ReadTables) All() []string {
	return []string{t.Applications, t.Chats, t.Messages, t.Position}
}

// ReadTables is the live set of read tables.
func (c Catalog) ReadTables() ReadTables { return c.ReadTablesCopy("") }

// ReadTablesCopy is a set of read tables whose names end with suffix: a
// replay builds "_next" and swaps the live set out to "_old".
func (c Catalog) ReadTablesCopy(suffix string) ReadTables {
	return ReadTables{
		Applications: c.table("applications") + suffix,
		Chats:        c.table("chats") + suffix,
		Messages:     c.table("messages") + suffix,
		Position:     c.table("read_position") + suffix,
	}
}

// MySQL named locks.

func (c Catalog) lock(name string) string { return c.ns + "." + name }

// MigrateLock is held while migrations are applied.
func (c Catalog) MigrateLock() string { return c.lock("migrate") }

// NumberingLock is held by the one process that watches the numbering state.
func (c Catalog) NumberingLock() string { return c.lock("numbering") }

// ReplayLock is held by a replay of a projection.
func (c Catalog) ReplayLock(projection string) string { return c.lock("replay." + projection) }

// DoctorLock is a lock `chat doctor` takes to see that named locks work;
// suffix makes it its own.
func (c Catalog) DoctorLock(suffix string) string { return c.lock("doctor." + suffix) }

// RabbitMQ objects.

// Exchange is the topic exchange every event is published to.
func (c Catalog) Exchange() string { return c.ns + ".events" }

// StoreQueue is the queue of a partition of the event log, which its writer
// consumes. Partition 0's keeps the name of the one queue of a namespace
// from before partitions.
func (c Catalog) StoreQueue(partition int) string {
	if partition == 0 {
		return c.ns + ".eventstore"
	}
	return c.ns + ".eventstore." + strconv.Itoa(partition)
}

// DeadQueue is where undecodable or conflicting events are parked.
func (c Catalog) DeadQueue() string { return c.ns + ".eventstore.dead" }

// Elasticsearch indices. An alias stands in front of versioned indices,
// <alias>-v<N>, so that a replay can build the next version and swap.

// SearchAlias is the alias of the message index.
func (c Catalog) SearchAlias() string { return c.ns + "-messages" }

// DoctorSearchAlias is the alias of a temporary index `chat doctor search`
// builds; suffix makes it its own.
func (c Catalog) DoctorSearchAlias(suffix string) string { return c.ns + "-doctor-" + suffix }

// IndexVersion is the concrete index of an alias's version.
func IndexVersion(alias string, version int) string {
	return alias + "-v" + strconv.Itoa(version)
}

// IndexVersions is the pattern of every version of an alias.
func IndexVersions(alias string) string { return alias + "-v*" }

// VersionOf returns the version of an alias that index is, if it is one.
func VersionOf(alias, index string) (int, bool) {
	rest, found := strings.CutPrefix(index, alias+"-v")
	if !found {
		return 0, false
	}
	v, err := strconv.Atoi(rest)
	return v, err == nil
}

// Redis keys.

// RedisPrefix begins every Redis key of the namespace.
func (c Catalog) RedisPrefix() string { return c.ns + ":" }

// RedisKeys is the pattern of every Redis key of the namespace.
func (c Catalog) RedisKeys() string { return c.RedisPrefix() + "*" }

// WakeChannel is the Redis (sharded) pub/sub channel of the wake-ups of a
// partition's chats. Channels of different partitions hash to different
// slots, so a Redis Cluster spreads them over its masters.
func (c Catalog) WakeChannel(partition int) string {
	return c.RedisPrefix() + "wake:" + strconv.Itoa(partition)
}

// The numbering state's keys. Every key of one application carries its token
// as the hash tag, so that a script touching several of them runs on one
// Redis Cluster slot.

// AppKey is an application's hash: its stream version and last chat number.
func (c Catalog) AppKey(token string) string { return c.RedisPrefix() + "app:{" + token + "}" }

// ChatKey is a chat's hash: its stream version and last message number.
func (c Catalog) ChatKey(token string, chat int64) string {
	return c.RedisPrefix() + "chat:{" + token + "}:" + strconv.FormatInt(chat, 10)
}

// FailedKey is a chat's bitmap of message numbers whose create failed.
func (c Catalog) FailedKey(token string, chat int64) string {
	return c.RedisPrefix() + "failed:{" + token + "}:" + strconv.FormatInt(chat, 10)
}

// DeletedKey is a chat's bitmap of deleted message numbers.
func (c Catalog) DeletedKey(token string, chat int64) string {
	return c.RedisPrefix() + "deleted:{" + token + "}:" + strconv.FormatInt(chat, 10)
}

// EditsKey is a chat's hash of message edit counts.
func (c Catalog) EditsKey(token string, chat int64) string {
	return c.RedisPrefix() + "edits:{" + token + "}:" + strconv.FormatInt(chat, 10)
}

// EpochKey is the epoch of one hash slot: its absence means the numbering
// state of the applications in that slot was lost. Its hash tag lands in the
// slot, so a script checks it along with an application's keys.
func (c Catalog) EpochKey(slot int) string {
	return c.RedisPrefix() + "epoch:{" + keyslot.Tag(slot) + "}"
}

// EpochKeyOf is the epoch of the slot a key of the namespace is in.
func (c Catalog) EpochKeyOf(key string) string { return c.EpochKey(keyslot.Slot(key)) }

// AppSlot is the hash slot of every key of an application.
func (c Catalog) AppSlot(token string) int { return keyslot.Slot(c.AppKey(token)) }

// IdempotencyIndex is the index of a scope's Idempotency-Keys; each key's
// record is the index's name, a colon and the key's id, under the same hash
// tag. The scope is an application's token, or "" for new applications.
func (c Catalog) IdempotencyIndex(scope string) string {
	tag := scope
	if tag == "" {
		tag = c.RedisPrefix() + "applications" // a token has no ':', so this is no application's tag
	}
	return c.RedisPrefix() + "idem:{" + tag + "}"
}

// Rate limits' keys, under the application's hash tag like its numbering
// state, so that the limiter's script reads the application's key, its
// override and its budget in one slot.

// LimitsKey is an application's rate-limit override: the version of the
// event that set it and the rates and burst it sets.
func (c Catalog) LimitsKey(token string) string { return c.RedisPrefix() + "limits:{" + token + "}" }

// BudgetKey is an application's token bucket of one kind of request
// ("commands" or "reads").
func (c Catalog) BudgetKey(token, kind string) string {
	return c.RedisPrefix() + "budget:{" + token + "}:" + kind
}
