package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// lane is one partition's queue of records to publish.
type lane struct {
	p         *Publisher
	topic     string
	partition int
	// refusedAt is when the broker last refused a batch of the lane's (unix
	// nanoseconds; 0: never).
	refusedAt atomic.Int64

	mu       sync.Mutex
	waiting  []*publishing
	inFlight int
	// queued: the lane waits in the dispatcher's queue for a slot.
	queued bool
}

// dispatcher shares the publisher's send slots among the lanes, in turn:
// a slot serves the lane at the front of the queue, sends what waits in it
// as one batch message, awaits the confirm, and puts the lane back at the
// end if more came meanwhile. A busy partition alone keeps its two batches
// in flight; many busy ones take turns, and each sends more per message.
type dispatcher struct {
	mu    sync.Mutex
	free  int
	ready []*lane
}

// add queues item and, unless the lane has as many batches in flight as it
// may or waits for a slot already, asks for a slot.
func (l *lane) add(item *publishing) {
	l.mu.Lock()
	l.waiting = append(l.waiting, item)
	ask := l.inFlight < l.p.cfg.InFlight && !l.queued
	l.queued = l.queued || ask
	l.mu.Unlock()
	if ask {
		l.p.schedule(l)
	}
}

// schedule puts l at the end of the queue and, if a slot is free, starts a
// sender on it.
func (p *Publisher) schedule(l *lane) {
	p.slots.mu.Lock()
	p.slots.ready = append(p.slots.ready, l)
	if p.slots.free == 0 {
		p.slots.mu.Unlock()
		return
	}
	p.slots.free--
	p.slots.mu.Unlock()
	p.sends.Add(1)
	go p.serve()
}

// serve holds a slot: it serves the lanes in the queue, in turn, until the
// queue is empty, then frees the slot. Each batch ends when the broker
// confirmed or refused it, its channel closed, or the timeout passed.
func (p *Publisher) serve() {
	defer p.sends.Done()
	for {
		l := p.next()
		if l == nil {
			return
		}
		batch := l.start()
		if batch == nil {
			continue
		}
		err := p.publishBatch(l.topic, batch)
		if errors.Is(err, ErrRefused) {
			l.refusedAt.Store(time.Now().UnixNano())
		}
		for _, item := range batch {
			item.done <- err
		}
		if l.finish() {
			p.slots.mu.Lock()
			p.slots.ready = append(p.slots.ready, l)
			p.slots.mu.Unlock()
		}
	}
}

// next takes the lane at the front of the queue, or frees the slot and
// returns nil when none waits.
func (p *Publisher) next() *lane {
	p.slots.mu.Lock()
	defer p.slots.mu.Unlock()
	if len(p.slots.ready) == 0 {
		p.slots.free++
		return nil
	}
	l := p.slots.ready[0]
	p.slots.ready[0] = nil
	p.slots.ready = p.slots.ready[1:]
	return l
}

// start takes the lane's next batch as it leaves the queue; nil if nothing
// waits or the lane has as many batches in flight as it may.
func (l *lane) start() []*publishing {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued = false
	if l.inFlight >= l.p.cfg.InFlight {
		return nil
	}
	batch := l.take()
	if batch != nil {
		l.inFlight++
	}
	return batch
}

// finish ends one of the lane's batches; true when records wait and the
// lane must be queued again.
func (l *lane) finish() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	requeue := len(l.waiting) > 0 && !l.queued
	l.queued = l.queued || requeue
	return requeue
}

// withdraw takes item out of the lane if it still waits for its batch:
// then it is never sent.
func (l *lane) withdraw(item *publishing) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, w := range l.waiting {
		if w == item {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// errSendDeadline answers a record that waited for its batch past its send
// deadline: it was not sent, and never will be.
var errSendDeadline = fmt.Errorf("%w: its send deadline passed while earlier publishes held the partition", ErrNotSent)

// take removes from the front of the queue what one batch message holds:
// records up to MaxBatchBytes of payload, and at least one; nil when none
// waits. Records past their send deadline are answered, unsent. l.mu is
// held.
func (l *lane) take() []*publishing {
	now := time.Now()
	live := l.waiting[:0]
	for _, item := range l.waiting {
		if now.After(item.sendBy) {
			item.done <- errSendDeadline
			continue
		}
		live = append(live, item)
	}
	clear(l.waiting[len(live):])
	l.waiting = live
	if len(l.waiting) == 0 {
		l.waiting = nil
		return nil
	}
	n, size := 0, 0
	for n < len(l.waiting) && (n == 0 || size+len(l.waiting[n].rec.Data) <= l.p.cfg.MaxBatchBytes) {
		size += len(l.waiting[n].rec.Data)
		n++
	}
	batch := l.waiting[:n:n]
	l.waiting = l.waiting[n:]
	if len(l.waiting) == 0 {
		l.waiting = nil
	}
	return batch
}
