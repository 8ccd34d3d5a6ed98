package broker_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/broker"
	"github.com/chatsys/chat/events"
)

func testRecord(t *testing.T, ev events.Event) events.Record {
	t.Helper()
	env, err := events.New(ev, 1, "corr-1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.NewCodec().Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBatchMessageRoundTrip: the records of a batch message read back as
// they were published, bodies byte for byte (no HTML escaping, no newline
// that would split a line), and a line that cannot be read fails alone.
func TestBatchMessageRoundTrip(t *testing.T) {
	t.Parallel()
	const token = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	recs := []events.Record{
		testRecord(t, events.MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: "<b>&</b>\nline two\u2028"}),
		testRecord(t, events.ChatCreated{Token: token, Number: 2, Name: "émoji 🙂"}),
	}
	msg, err := broker.BatchMessage(recs)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(msg.Payload, []byte{'\n'}) != len(recs) {
		t.Fatalf("payload holds %d lines, want %d: %q", bytes.Count(msg.Payload, []byte{'\n'}), len(recs), msg.Payload)
	}
	lines := broker.Records(msg)
	if len(lines) != len(recs) {
		t.Fatalf("read %d records, want %d", len(lines), len(recs))
	}
	for i, l := range lines {
		if l.Err != nil {
			t.Fatalf("record %d: %v", i, l.Err)
		}
		got, want := l.Record, recs[i]
		if got.EventID != want.EventID || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion ||
			got.StreamID != want.StreamID || got.StreamVersion != want.StreamVersion ||
			!got.OccurredAt.Equal(want.OccurredAt) || got.CorrelationID != want.CorrelationID || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("record %d read back as %+v, want %+v", i, got, want)
		}
	}

	tests := []struct {
		name string
		line string
	}{
		{"not JSON", `{"event_id":`},
		{"no type", `{"event_id":"` + uuid.NewString() + `","stream_id":"app:x","stream_version":1,"data":{}}`},
		{"no data", `{"event_id":"` + uuid.NewString() + `","type":"ChatCreated","stream_id":"app:x","stream_version":1}`},
	}
	for _, tc := range tests {
		bad, _ := broker.BatchMessage(recs)
		// The bad line sits between the two good ones.
		first, rest, _ := bytes.Cut(bad.Payload, []byte{'\n'})
		bad.Payload = append(append(append(append([]byte{}, first...), '\n'), tc.line+"\n"...), rest...)
		lines := broker.Records(bad)
		if len(lines) != 3 || lines[0].Err != nil || lines[2].Err != nil {
			t.Errorf("%s: the good records around a bad line do not read back: %+v", tc.name, lines)
			continue
		}
		if !errors.Is(lines[1].Err, events.ErrUndecodable) || string(lines[1].Raw) != tc.line {
			t.Errorf("%s: bad line read as err %v, raw %q", tc.name, lines[1].Err, lines[1].Raw)
		}
	}
}

// TestSingleEventMessagesStillRead: a message of one event, as releases
// before batch messages published them, reads as that one record.
func TestSingleEventMessagesStillRead(t *testing.T) {
	t.Parallel()
	r := testRecord(t, events.ApplicationCreated{Token: "aaaaaaaaaaaaaaaaaaaaaaaaaa", Name: "old"})
	lines := broker.Records(broker.ToMessage(r))
	if len(lines) != 1 || lines[0].Err != nil {
		t.Fatalf("read %+v", lines)
	}
	if got := lines[0].Record; got.EventID != r.EventID || !bytes.Equal(got.Data, r.Data) || !got.OccurredAt.Equal(r.OccurredAt.Truncate(time.Nanosecond)) {
		t.Errorf("read back %+v, want %+v", got, r)
	}
}
