package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
	"github.com/chatsys/chat/redact"
)

// decode reads the records of one broker message: a batch message holds
// many. A line that cannot be read is set aside, to be parked alone with
// its reason once the others are committed.
func (w *Writer) decode(m amqp.Delivery) *delivery {
	id, lines := broker.DeliveryRecords(m)
	d := &delivery{tag: m.DeliveryTag, id: id, recs: make([]events.Record, 0, len(lines)), raws: make([][]byte, 0, len(lines))}
	for _, l := range lines {
		err := l.Err
		if err == nil {
			_, err = w.codec.Decode(l.Record)
		}
		if err != nil {
			w.metrics.records.WithLabelValues("undecodable").Inc()
			w.log.Error("parking undecodable event", "message_id", id, "correlation_id", l.Record.CorrelationID, "err", redact.Tokens(err.Error()))
			d.bad = append(d.bad, parked{l.Raw, err})
			continue
		}
		d.recs = append(d.recs, l.Record)
		d.raws = append(d.raws, l.Raw)
	}
	return d
}

// parkRefused parks the lines of d that cannot be read and the records
// that conflict with stored ones (status has a status per record), once
// the others are committed and before d is acknowledged: a failed commit
// is tried again before anything is parked, so nothing is parked twice.
func (pw *partitionWriter) parkRefused(d *delivery, status []eventstore.Status) error {
	bad := d.bad
	for i, st := range status {
		if st != eventstore.Conflict {
			continue
		}
		r := d.recs[i]
		pw.w.log.Error("parking conflicting event", "event_id", r.EventID, "correlation_id", r.CorrelationID, "stream_id", redact.Tokens(r.StreamID), "stream_version", r.StreamVersion)
		bad = append(bad, parked{d.raws[i], fmt.Errorf("%w: %s version %d", ErrConflict, r.StreamID, r.StreamVersion)})
	}
	for _, b := range bad {
		if err := pw.park(d.id, b.raw, b.reason); err != nil {
			return err
		}
	}
	return nil
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
func (pw *partitionWriter) park(messageID string, raw []byte, reason error) error {
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
	msg.Metadata.Set("message_id", messageID)
	if err := dead.Publish(broker.DeadTopic, msg); err != nil {
		return fmt.Errorf("park an event: %w", err)
	}
	return nil
}
