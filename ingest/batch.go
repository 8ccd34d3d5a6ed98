package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
)

// batch appends what the consumers hand over: it takes whatever is waiting
// (group commit: a batch forms while the previous one commits) and answers
// each waiter once the transaction is committed.
func (pw *partitionWriter) batch(ctx context.Context, stop <-chan struct{}, lost func(error)) {
	batch := make([]*pending, 0, pw.w.cfg.Consumers)
	for {
		batch = batch[:0]
		select {
		case p := <-pw.in:
			batch = append(batch, p)
		case <-stop:
			return
		}
		batch = pw.fill(batch)
		pw.flush(ctx, batch, lost)
	}
}

// fill adds to batch the records that keep coming, until the batch is
// full in records or bytes. It lingers while they come: the consumers
// answered by the last commit are acknowledging and taking their next
// message, and a batch that waits for them is several times larger. A lone
// record waits one gap at most, and no batch waits more than maxLinger.
func (pw *partitionWriter) fill(batch []*pending) []*pending {
	size := 0
	for _, p := range batch {
		size += p.bytes()
	}
	deadline := time.Now().Add(maxLinger)
	gap := time.NewTimer(lingerGap)
	defer gap.Stop()
	for len(batch) < cap(batch) && size < pw.w.cfg.MaxBatchBytes {
		p, ok := pw.next(gap, deadline)
		if !ok {
			break
		}
		batch = append(batch, p)
		size += p.bytes()
	}
	return batch
}

// next returns a record that is waiting or, before the deadline, one that
// arrives within a gap; false when none does.
func (pw *partitionWriter) next(gap *time.Timer, deadline time.Time) (*pending, bool) {
	select {
	case p := <-pw.in:
		return p, true
	default:
	}
	if time.Now().After(deadline) {
		return nil, false
	}
	gap.Reset(lingerGap)
	select {
	case p := <-pw.in:
		return p, true
	case <-gap.C:
		return nil, false
	}
}

func (pw *partitionWriter) flush(ctx context.Context, batch []*pending, lost func(error)) {
	w := pw.w
	var recs []events.Record
	for _, p := range batch {
		recs = append(recs, p.recs...)
	}
	// The commit must not be cut short by shutdown: finish the batch, then
	// ack. Every partition bounds it alike, since the batch may commit in
	// another partition's transaction.
	appendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	res, err := w.group.Do(appendCtx, eventstore.Batch{Appender: pw.app, Records: recs})
	cancel()
	if err != nil {
		if errors.Is(err, eventstore.ErrFenced) {
			w.log.Warn("partition taken over by another writer; stopping", "partition", pw.app.Partition(), "events", len(recs))
			lost(err)
		} else {
			w.log.Error("event store append failed", "partition", pw.app.Partition(), "events", len(recs), "err", err)
		}
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
		return
	}
	status := res.Status
	counts := map[eventstore.Status]int{}
	for _, st := range status {
		counts[st]++
	}
	for _, p := range batch {
		p.status, status = status[:len(p.recs)], status[len(p.recs):]
		close(p.done)
	}
	w.metrics.records.WithLabelValues("appended").Add(float64(counts[eventstore.Appended]))
	w.metrics.records.WithLabelValues("duplicate").Add(float64(counts[eventstore.Duplicate]))
	w.metrics.records.WithLabelValues("conflict").Add(float64(counts[eventstore.Conflict]))
	if len(res.Stored) > 0 && pw.onAppend != nil {
		pw.onAppend(res.Stored)
	}
}

// bytes is the payload size of p's records.
func (p *pending) bytes() int {
	n := 0
	for _, r := range p.recs {
		n += len(r.Data)
	}
	return n
}
