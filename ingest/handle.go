package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/redact"
)

// handle stores the records of one broker message: a batch message holds
// many. A record that cannot be decoded, or that conflicts with a stored
// one, is parked alone with its reason, once the others are committed (a
// failed commit is retried before anything is parked, so that a retry does
// not park a record twice); then the message is acknowledged.
func (pw *partitionWriter) handle(msg *message.Message) ([]*message.Message, error) {
	w := pw.w
	lines := broker.Records(msg)
	p := &pending{recs: make([]events.Record, 0, len(lines)), done: make(chan struct{})}
	raws := make([][]byte, 0, len(lines))
	var bad []parked
	for _, l := range lines {
		err := l.Err
		if err == nil {
			_, err = w.codec.Decode(l.Record)
		}
		if err != nil {
			w.metrics.records.WithLabelValues("undecodable").Inc()
			w.log.Error("parking undecodable event", "message_id", msg.UUID, "correlation_id", l.Record.CorrelationID, "err", redact.Tokens(err.Error()))
			bad = append(bad, parked{l.Raw, err})
			continue
		}
		p.recs = append(p.recs, l.Record)
		raws = append(raws, l.Raw)
	}
	if len(p.recs) > 0 {
		// The batcher serves pw.in until every consumer has returned, so
		// neither send nor receive can be stranded.
		pw.in <- p
		<-p.done
		if p.err != nil {
			return nil, p.err
		}
	}
	for i, st := range p.status {
		if st != eventstore.Conflict {
			continue
		}
		r := p.recs[i]
		w.log.Error("parking conflicting event", "event_id", r.EventID, "correlation_id", r.CorrelationID, "stream_id", redact.Tokens(r.StreamID), "stream_version", r.StreamVersion)
		bad = append(bad, parked{raws[i], fmt.Errorf("%w: %s version %d", ErrConflict, r.StreamID, r.StreamVersion)})
	}
	for _, b := range bad {
		if err := pw.park(msg, b.raw, b.reason); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// parkCheckTimeout bounds the look-up of whether a record to park is of a
// deleted message.
const parkCheckTimeout = 10 * time.Second

// parked is a record that can never be stored, and why.
type parked struct {
	raw    []byte
	reason error
}

// park publishes one record that can never be stored to the dead-letter
// queue, with the reason, as Watermill's poison queue does a whole message.
func (pw *partitionWriter) park(from *message.Message, raw []byte, reason error) error {
	dead, err := pw.w.deadPublisher()
	if err != nil {
		return err
	}
	// A record of a deleted message is parked without its words; one
	// parked while its delete commits is erased by the DeadEraser.
	ctx, cancel := context.WithTimeout(context.Background(), parkCheckTimeout)
	defer cancel()
	raw, _, err = broker.EraseLines(raw, func(streams []string) (map[string]bool, error) {
		return pw.w.store.Deleted(ctx, streams)
	})
	if err != nil {
		return fmt.Errorf("park an event: %w", err)
	}
	msg := message.NewMessage(watermill.NewUUID(), raw)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, reason.Error())
	msg.Metadata.Set("message_id", from.UUID)
	if err := dead.Publish(broker.DeadTopic, msg); err != nil {
		return fmt.Errorf("park an event: %w", err)
	}
	return nil
}
