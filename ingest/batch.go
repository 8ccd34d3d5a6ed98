package ingest

import (
	"context"
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/internal/pause"
)

// read decodes the deliveries as they come and hands them to the batcher,
// so that the next batch is decoded while one commits. It closes pw.in when
// the deliveries end; quit stops it sooner, also while it waits for one.
func (pw *partitionWriter) read(deliveries <-chan amqp.Delivery, quit <-chan struct{}) {
	defer close(pw.in)
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			select {
			case pw.in <- pw.w.decode(d):
			case <-quit:
				return
			}
		case <-quit:
			return
		}
	}
}

// write appends what the reader hands over, a batch at a time: it takes
// whatever is waiting (group commit: a batch forms while the previous one
// commits), and once the batch is committed acknowledges all of its
// messages at once. It returns nil when the reader has nothing more.
func (pw *partitionWriter) write(ctx context.Context, ack func(tag uint64) error) error {
	batch := make([]*delivery, 0, pw.w.cfg.Prefetch)
	for {
		first, ok := <-pw.in
		if !ok {
			return nil
		}
		batch = pw.fill(append(batch[:0], first))
		if err := pw.store(ctx, batch); err != nil {
			return err
		}
		if err := ack(batch[len(batch)-1].tag); err != nil {
			// The broker gives them to the next writer, which finds them
			// stored.
			return err
		}
	}
}

// fill adds to batch the messages that keep coming, until the batch is
// full in messages or bytes. It lingers while they come: a batch that
// waits for the broker's next few deliveries is several times larger. A
// lone message waits one gap at most, and no batch waits more than
// maxLinger.
func (pw *partitionWriter) fill(batch []*delivery) []*delivery {
	size := 0
	for _, d := range batch {
		size += d.bytes()
	}
	deadline := time.Now().Add(maxLinger)
	gap := time.NewTimer(lingerGap)
	defer gap.Stop()
	for len(batch) < cap(batch) && size < pw.w.cfg.MaxBatchBytes {
		d, ok := pw.next(gap, deadline)
		if !ok {
			break
		}
		batch = append(batch, d)
		size += d.bytes()
	}
	return batch
}

// next returns a message that is waiting or, before the deadline, one that
// arrives within a gap; false when none does or the reader is done.
func (pw *partitionWriter) next(gap *time.Timer, deadline time.Time) (*delivery, bool) {
	select {
	case d, ok := <-pw.in:
		return d, ok
	default:
	}
	if time.Now().After(deadline) {
		return nil, false
	}
	gap.Reset(lingerGap)
	select {
	case d, ok := <-pw.in:
		return d, ok
	case <-gap.C:
		return nil, false
	}
}

// store appends a batch, trying a transient failure again a few times,
// then parks what can never be stored. A batch that still fails is held a
// while and its error returned (then its messages go back to the queue);
// a partition taken over returns eventstore.ErrFenced at once.
func (pw *partitionWriter) store(ctx context.Context, batch []*delivery) error {
	w := pw.w
	var recs []events.Record
	for _, d := range batch {
		recs = append(recs, d.recs...)
	}
	var status []eventstore.Status
	if len(recs) > 0 {
		res, err := pw.append(ctx, recs)
		if err != nil {
			return err
		}
		status = res.Status
		counts := map[eventstore.Status]int{}
		for _, st := range status {
			counts[st]++
		}
		w.metrics.records.WithLabelValues("appended").Add(float64(counts[eventstore.Appended]))
		w.metrics.records.WithLabelValues("duplicate").Add(float64(counts[eventstore.Duplicate]))
		w.metrics.records.WithLabelValues("conflict").Add(float64(counts[eventstore.Conflict]))
		if len(res.Stored) > 0 && pw.onAppend != nil {
			pw.onAppend(res.Stored)
		}
	}
	for _, d := range batch {
		var mine []eventstore.Status
		mine, status = status[:len(d.recs)], status[len(d.recs):]
		if err := pw.parkRefused(d, mine); err != nil {
			return err
		}
	}
	return nil
}

// append commits recs, trying again after each of appendRetries.
func (pw *partitionWriter) append(ctx context.Context, recs []events.Record) (eventstore.Result, error) {
	w := pw.w
	for attempt := 0; ; attempt++ {
		// The commit must not be cut short by shutdown: finish the batch,
		// then ack. Every partition bounds it alike, since the batch may
		// commit in another partition's transaction.
		appendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		res, err := w.group.Do(appendCtx, eventstore.Batch{Appender: pw.app, Records: recs})
		cancel()
		if err == nil {
			return res, nil
		}
		if errors.Is(err, eventstore.ErrFenced) {
			w.log.Warn("partition taken over by another writer; stopping", "partition", pw.app.Partition(), "events", len(recs))
			return res, err
		}
		w.log.Error("event store append failed", "partition", pw.app.Partition(), "events", len(recs), "attempt", attempt+1, "err", err)
		if attempt == len(appendRetries) {
			_ = pause.For(ctx, returnDelay)
			return res, err
		}
		if pause.For(ctx, appendRetries[attempt]) != nil {
			return res, err
		}
	}
}

// bytes is the payload size of d's records.
func (d *delivery) bytes() int {
	n := 0
	for _, r := range d.recs {
		n += len(r.Data)
	}
	return n
}
