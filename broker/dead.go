package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/chatsys/chat/events"
)

// RewriteDead hands each message waiting in the dead queue to rewrite, and
// puts back in its place a new copy of each one rewrite changed (same
// headers, new body, confirmed before the old one is acknowledged). The
// others are given back to the queue as they were. It returns how many
// messages it rewrote.
//
// A dead queue holds few messages, parked for a person to look at, so all
// of them are taken at once: one that was given back is not taken twice.
func RewriteDead(ctx context.Context, amqpURLs string, names Names, rewrite func(body []byte) ([]byte, bool, error)) (int, error) {
	conn, err := dialNodes(ctx, amqpURLs, "chat dead-letter rewrite")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	// Closing the channel gives back what is neither acknowledged nor
	// given back yet, should this return early.
	defer func() { _ = ch.Close() }()
	if err := ch.Confirm(false); err != nil {
		return 0, fmt.Errorf("confirm mode: %w", err)
	}
	q, err := ch.QueueDeclarePassive(names.DeadStore, true, false, false, false, names.QueueArgs(names.DeadStore))
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w", names.DeadStore, err)
	}
	var held []amqp.Delivery
	for range q.Messages {
		d, ok, err := ch.Get(names.DeadStore, false)
		if err != nil {
			return 0, fmt.Errorf("get from %s: %w", names.DeadStore, err)
		}
		if !ok {
			break
		}
		held = append(held, d)
	}
	rewritten := 0
	for _, d := range held {
		body, changed, err := rewrite(d.Body)
		if err != nil {
			return rewritten, err
		}
		if !changed {
			if err := d.Nack(false, true); err != nil {
				return rewritten, err
			}
			continue
		}
		if err := republish(ctx, ch, names, d, body); err != nil {
			return rewritten, err
		}
		if err := d.Ack(false); err != nil {
			return rewritten, err
		}
		rewritten++
	}
	return rewritten, nil
}

// republish sends a copy of d with body to the dead queue and waits for
// its confirm.
func republish(ctx context.Context, ch *amqp.Channel, names Names, d amqp.Delivery, body []byte) error {
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, names.Exchange, DeadTopic, true, false, amqp.Publishing{
		Headers: d.Headers, ContentType: d.ContentType, MessageId: d.MessageId, Timestamp: d.Timestamp,
		DeliveryMode: amqp.Persistent, Body: body,
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", names.DeadStore, err)
	}
	ok, err := conf.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the broker refused a rewritten dead letter")
	}
	return nil
}

// EraseLines takes the words of deleted messages out of a body the dead
// queue holds, line by line: a batch message's lines, a parked line, or the
// payload of a single event. deleted says which of the message streams it
// is given are deleted. It reports whether anything changed. A line it
// cannot read is left as it is: it names no message.
func EraseLines(body []byte, deleted func(streams []string) (map[string]bool, error)) ([]byte, bool, error) {
	lines := bytes.Split(body, []byte{'\n'})
	streams := make([]string, len(lines))
	var ask []string
	for i, l := range lines {
		if streams[i] = messageOf(l); streams[i] != "" {
			ask = append(ask, streams[i])
		}
	}
	if len(ask) == 0 {
		return body, false, nil
	}
	gone, err := deleted(ask)
	if err != nil || len(gone) == 0 {
		return body, false, err
	}
	changed := false
	for i, l := range lines {
		if !gone[streams[i]] {
			continue
		}
		erased, ok := eraseLine(l)
		if ok && !bytes.Equal(erased, l) {
			lines[i], changed = erased, true
		}
	}
	return bytes.Join(lines, []byte{'\n'}), changed, nil
}

// messageOf names the message stream whose words a line carries, or "".
func messageOf(line []byte) string {
	var w wireRecord
	if json.Unmarshal(line, &w) == nil && w.Type != "" {
		if events.Erasable(w.Type) {
			return w.StreamID
		}
		return ""
	}
	var m struct {
		Token      string `json:"token"`
		ChatNumber int64  `json:"chat_number"`
		Number     int64  `json:"number"`
		Body       *string
	}
	if json.Unmarshal(line, &m) == nil && m.Token != "" && m.Number > 0 && m.Body != nil {
		return events.MessageStream(m.Token, m.ChatNumber, m.Number)
	}
	return ""
}

// eraseLine erases a wire record's payload, or a payload's body.
func eraseLine(line []byte) ([]byte, bool) {
	var w wireRecord
	if json.Unmarshal(line, &w) == nil && w.Type != "" {
		r, err := events.EraseRecord(events.Record{Type: w.Type, Data: w.Data})
		if err != nil {
			return line, false
		}
		w.Data = r.Data
		out, err := json.Marshal(w)
		return out, err == nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return line, false
	}
	m["body"], m["erased"] = json.RawMessage(`""`), json.RawMessage(`true`)
	out, err := json.Marshal(m)
	return out, err == nil
}
