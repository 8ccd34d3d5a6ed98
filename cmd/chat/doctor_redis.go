package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/numbering"
	"github.com/chatsys/chat/rediscluster"
)

// checkRedis checks Redis, which holds the command side's numbering state.
func checkRedis(ctx context.Context, cfg config.Config, c *checkup) {
	addrs, err := rediscluster.Check(cfg.RedisURL)
	if err != nil {
		c.misconfigured(ctx, "CHAT_REDIS_URL", err)
		return
	}
	// A doctor reports a failure; it does not hide it behind retries.
	rdb, err := rediscluster.Open(cfg.RedisURL, rediscluster.Options{PoolSize: 2, MaxRetries: -1, DialTimeout: c.timeout})
	if err != nil {
		c.misconfigured(ctx, "CHAT_REDIS_URL", err)
		return
	}
	defer rdb.Close()
	where := strings.Join(addrs, ", ")
	c.where = where

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		info, err := rdb.Info(ctx, "server").Result()
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "invalid password") {
				return fail(fmt.Sprintf("%s: %v", where, err), "check the user and password in CHAT_REDIS_URL")
			}
			return fail(fmt.Sprintf("%s: %v", where, err), "start Redis, or point CHAT_REDIS_URL at it")
		}
		fields := infoFields(info)
		return ok("%s, server %s (%s mode)", where, fields["redis_version"], fields["redis_mode"])
	}) {
		c.stop("Redis is not reachable")
	}

	c.run(ctx, "numbering epoch", func(ctx context.Context) finding { return numberingEpoch(ctx, rdb, cfg.Namespace) })
	c.run(ctx, "persistence", func(ctx context.Context) finding { return redisPersistence(ctx, rdb) })
}

// numberingEpoch judges each master's slot epochs: a slot without one, or
// sealed by a run that is gone, may have lost numbers.
func numberingEpoch(ctx context.Context, rdb redis.UniversalClient, namespace string) finding {
	numbers := numbering.New(rdb, namespace)
	masters, err := numbers.Masters(ctx)
	if err != nil {
		return fail(err.Error(), "")
	}
	var lines []string
	missing, stale := 0, 0
	for _, m := range masters {
		missing += len(m.Missing())
		stale += len(m.Stale())
		lines = append(lines, fmt.Sprintf("master %s run %s: %d slots, %d sealed, %d missing, %d sealed by another run",
			m.Addr, short(m.RunID), len(m.Slots), len(m.Sealed()), len(m.Missing()), len(m.Stale())))
	}
	report := strings.Join(lines, "\n")
	switch {
	case missing > 0:
		return fail(fmt.Sprintf("%d slot epochs are missing: Redis holds no numbering state there for namespace %s (a new or emptied server, or lost data), so commands there answer 503\n%s", missing, namespace, report),
			"a worker must rebuild it from the event store, and `chat work` does so on its own within seconds: start one if none runs\n(for a namespace with no events yet, `chat migrate` seals it at once)")
	case stale > 0:
		return fail(fmt.Sprintf("%d slot epochs were set by a Redis run that is gone: a master restarted or failed over and may have lost the last numbers\n%s", stale, report),
			"a running `chat work` notices within a second and rebuilds those slots from the event store; if this persists, no worker is running: start one")
	}
	return ok("every slot sealed by its master's run\n%s", report)
}

// redisPersistence judges whether the numbering state survives a restart:
// AOF on, and flushed every second.
func redisPersistence(ctx context.Context, rdb redis.UniversalClient) finding {
	appendOnly, fsync := "", ""
	if conf, err := rdb.ConfigGet(ctx, "append*").Result(); err == nil {
		appendOnly, fsync = conf["appendonly"], conf["appendfsync"]
	} else if info, ierr := rdb.Info(ctx, "persistence").Result(); ierr == nil {
		// CONFIG is often disabled on managed servers; INFO still tells whether AOF is on.
		switch infoFields(info)["aof_enabled"] {
		case "1":
			appendOnly = "yes"
		case "0":
			appendOnly = "no"
		}
		fsync = "unknown (CONFIG GET refused: " + err.Error() + ")"
	} else {
		return warn("cannot tell: CONFIG GET and INFO persistence were refused: "+err.Error(), "make sure the server runs with appendonly yes and appendfsync everysec")
	}
	why := "the numbering state (the last chat and message numbers handed out) lives in Redis; without AOF a restart or crash loses everything written since the last snapshot, the workers must rebuild it from the event store, and commands answer 503 until they have"
	switch {
	case appendOnly == "no":
		return warn(fmt.Sprintf("appendonly no, appendfsync %s: %s", fsync, why),
			"CONFIG SET appendonly yes and CONFIG SET appendfsync everysec, and set both in redis.conf (or run redis-server --appendonly yes --appendfsync everysec)")
	case appendOnly == "yes" && fsync == "no":
		return warn("appendonly yes, appendfsync no: the operating system decides when the log reaches the disk, so a machine crash can lose many seconds of numbering state",
			"CONFIG SET appendfsync everysec, and set it in redis.conf")
	}
	return ok("appendonly %s, appendfsync %s", appendOnly, fsync)
}

// infoFields parses the key:value lines of INFO.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, found := strings.Cut(strings.TrimSpace(line), ":"); found {
			out[k] = v
		}
	}
	return out
}

// short shortens a run id for the report.
func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
