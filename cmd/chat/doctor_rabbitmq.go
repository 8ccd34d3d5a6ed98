package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/partition"
)

// checkRabbitMQ checks the broker and the namespace's topology on it, as
// package broker finds it against what the processes declare.
func checkRabbitMQ(ctx context.Context, cfg config.Config, c *checkup) {
	nodes, err := broker.ParseNodes(cfg.AMQPURL)
	if err != nil {
		c.misconfigured(ctx, "CHAT_AMQP_URL", err)
		return
	}
	where := fmt.Sprintf("%s vhost %s as %s", strings.Join(nodes.Addrs(), ","), nodes.Vhost(), nodes.User())
	c.where = strings.Join(nodes.Addrs(), ",")
	// The partitions' queues are checked as many as MySQL says there are;
	// without MySQL, partition 0's. MySQL is asked meanwhile, so that a
	// silent one does not double the time the checks take.
	counted := make(chan partitionsCounted, 1)
	go func() {
		n, err := partitionCount(ctx, cfg)
		counted <- partitionsCounted{n, err}
	}()
	// The connection is made by a check that may be left running after its
	// timeout, hence the atomic.
	var inspector atomic.Pointer[broker.Inspector]
	defer func() {
		if in := inspector.Load(); in != nil {
			_ = in.Close()
		}
	}()

	if !c.run(ctx, "reachable", func(ctx context.Context) finding { return rabbitReachable(ctx, cfg.AMQPURL, where, &inspector) }) {
		c.stop("RabbitMQ is not reachable")
	}
	names := namesOf(cfg, 1)
	c.run(ctx, "exchange "+names.Exchange, func(context.Context) finding { return rabbitExchange(inspector.Load(), names) })

	parts := <-counted
	names = namesOf(cfg, parts.n)
	if parts.err != nil {
		c.run(ctx, "partition queues", func(context.Context) finding {
			return warn("the partition count could not be read from MySQL ("+parts.err.Error()+"); only partition 0's queue is checked", "see the MySQL checks")
		})
	}
	// The dead queue, then each partition's; what each check finds is read
	// only after every queue check passed.
	queues := names.Queues()
	found := make([]broker.QueueFound, len(queues))
	queuesOK := true
	for i, name := range queues {
		queuesOK = c.run(ctx, "queue "+name, func(context.Context) finding {
			q, err := inspector.Load().Queue(names, name)
			if err == nil {
				found[i] = q
			}
			return rabbitQueue(q, err)
		}) && queuesOK
	}
	if !queuesOK {
		c.stop("a queue is missing or could not be inspected")
	}
	c.run(ctx, "parked events", func(context.Context) finding { return parkedEvents(found[0]) })
	c.run(ctx, "queued events", func(context.Context) finding { return queuedEvents(found[1:]) })
}

// partitionsCounted is the partition count, or why it could not be read.
type partitionsCounted struct {
	n   int
	err error
}

// rabbitReachable connects, keeping the connection for the checks after
// it, and names the server.
func rabbitReachable(ctx context.Context, amqpURL, where string, inspector *atomic.Pointer[broker.Inspector]) finding {
	in, err := broker.Inspect(ctx, amqpURL, "chat doctor")
	switch {
	case broker.RefusalOf(err) == broker.RefusedVhost:
		return fail(fmt.Sprintf("%s: %v", where, err), "create the vhost or let the user use it (rabbitmqctl add_vhost, set_permissions), or correct CHAT_AMQP_URL")
	case broker.RefusalOf(err) == broker.RefusedLogin:
		return fail(fmt.Sprintf("%s: %v", where, err), "check the user and password in CHAT_AMQP_URL")
	case err != nil:
		return fail(fmt.Sprintf("%s: %v", where, err), "start RabbitMQ, or point CHAT_AMQP_URL at it")
	}
	if !inspector.CompareAndSwap(nil, in) {
		_ = in.Close()
	}
	product, version := in.Server()
	return ok("%s, server %s %s", where, product, version)
}

// missingObject is the fix of an exchange or queue that does not exist.
const missingObject = "run `chat migrate` (every chat process also declares it when it starts)"

func rabbitExchange(in *broker.Inspector, names broker.Names) finding {
	ex, err := in.Exchange(names)
	switch {
	case err != nil:
		return fail(err.Error(), "")
	case !ex.Exists:
		return fail("does not exist", missingObject)
	case ex.Differs != "":
		return fail("not a durable topic exchange: "+ex.Differs, "delete it (an exchange holds no messages) and run `chat migrate`, which declares it durable")
	}
	return ok("exists, durable topic exchange")
}

// rabbitQueue judges a queue's shape: one of an older release still works,
// with a warning of what it lacks.
func rabbitQueue(q broker.QueueFound, err error) finding {
	const convert = "stop `chat serve`, let `chat work` drain the queue, stop `chat work`, run `chat migrate` (it declares an empty, unused queue anew), start the processes"
	if err != nil {
		return fail(err.Error(), "")
	}
	switch q.Shape {
	case broker.ShapeMissing:
		return fail("does not exist", missingObject)
	case broker.ShapeClassic:
		return warn("a classic queue, on one node: losing that node loses it and the events in it", convert)
	case broker.ShapeUnbounded:
		return warn("a quorum queue without a length bound: an overload lets its backlog, and the read side's lag, grow without limit", convert)
	case broker.ShapeOther:
		return warn("declared otherwise than the processes declare it (another length bound than CHAT_STORE_QUEUE_BYTES, say); it is used as it is", convert)
	}
	if q.Bound > 0 {
		return ok("exists, durable quorum queue, holding at most %d bytes waiting", q.Bound)
	}
	return ok("exists, durable quorum queue")
}

func parkedEvents(dead broker.QueueFound) finding {
	if dead.Messages > 0 {
		return warn(fmt.Sprintf("%d events in %s: the event store writer could not store them (undecodable, or a different event claiming a stored stream version); they are not in the event store and wait for a person", dead.Messages, dead.Name),
			"read each one's reason (header reason_poisoned), e.g. with Get messages on the queue's page in the management UI; fix the producer, then republish or purge them")
	}
	return ok("none in %s", dead.Name)
}

// queuedEvents judges the partitions' queues: a queue without a consumer
// has no writer, so its events wait.
func queuedEvents(queues []broker.QueueFound) finding {
	ready, consumers := 0, 0
	var unserved []string
	for _, q := range queues {
		ready += q.Messages
		consumers += q.Consumers
		if q.Consumers == 0 {
			unserved = append(unserved, q.Name)
		}
	}
	if len(unserved) > 0 {
		return warn(fmt.Sprintf("%d ready in %d partition queues; no consumer on %s: no event store writer serves them, so their events are not stored and reads do not move", ready, len(queues), strings.Join(unserved, ", ")),
			"start `chat work` (or `chat all`)")
	}
	return ok("%d ready in %d partition queues, %d consumers", ready, len(queues), consumers)
}

// partitionCount reads how many partitions the namespace has; 1 when it
// cannot.
func partitionCount(ctx context.Context, cfg config.Config) (int, error) {
	db, err := mysqldb.Open(cfg.MySQLDSN, 1)
	if err != nil {
		return 1, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	n, err := partition.NewTable(db, cfg.Namespace).Count(ctx)
	if err != nil {
		return 1, err
	}
	return n, nil
}
