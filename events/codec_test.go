package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	codec := NewCodec()
	const token = "abcdefghijklmnopqrstuvwxyz"
	tests := []struct {
		ev       Event
		typeName string
		stream   string
	}{
		{ApplicationCreated{Token: token, Name: "acme"}, "ApplicationCreated", "app:" + token},
		{ApplicationRenamed{Token: token, Name: "acme 2"}, "ApplicationRenamed", "app:" + token},
		{ChatCreated{Token: token, Number: 3, Name: "general"}, "ChatCreated", "chat:" + token + ":3"},
		{ChatRenamed{Token: token, Number: 3, Name: "random"}, "ChatRenamed", "chat:" + token + ":3"},
		{MessageCreated{Token: token, ChatNumber: 3, Number: 7, Body: "héllo"}, "MessageCreated", "msg:" + token + ":3:7"},
		{MessageEdited{Token: token, ChatNumber: 3, Number: 7, Body: "bye"}, "MessageEdited", "msg:" + token + ":3:7"},
	}
	for _, tc := range tests {
		t.Run(tc.typeName, func(t *testing.T) {
			env, err := New(tc.ev, 2, "req-1")
			if err != nil {
				t.Fatal(err)
			}
			if env.EventID.Version() != 7 {
				t.Errorf("event id %s is not a UUID v7", env.EventID)
			}
			rec, err := codec.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Type != tc.typeName || rec.StreamID != tc.stream || rec.SchemaVersion != 1 || rec.StreamVersion != 2 || rec.CorrelationID != "req-1" {
				t.Errorf("record %+v", rec)
			}
			back, err := codec.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, env) {
				t.Errorf("decoded %+v, want %+v", back, env)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	codec := NewCodec()
	env, _ := New(MessageCreated{Token: "t", ChatNumber: 1, Number: 1, Body: "b"}, 1, "")
	good, _ := codec.Encode(env)
	tests := []struct {
		name   string
		change func(r *Record)
	}{
		{"unknown type", func(r *Record) { r.Type = "MessagePinned" }},
		{"future schema version", func(r *Record) { r.SchemaVersion = 2 }},
		{"malformed payload", func(r *Record) { r.Data = []byte("{") }},
		{"payload of another stream", func(r *Record) { r.StreamID = "msg:t:1:2" }},
		{"stream version zero", func(r *Record) { r.StreamVersion = 0 }},
		{"type renamed after a Go type", func(r *Record) { r.Type = "events.MessageCreated" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.change(&r)
			if _, err := codec.Decode(r); !errors.Is(err, ErrUndecodable) {
				t.Errorf("Decode = %v, want ErrUndecodable", err)
			}
		})
	}
}

// TestCodecStoresTextAsItIs: a payload keeps <, > and & as they are (escaped
// they take six bytes each), and payloads stored escaped by earlier builds
// still decode to the same event.
func TestCodecStoresTextAsItIs(t *testing.T) {
	t.Parallel()
	codec := NewCodec()
	const token = "abcdefghijklmnopqrstuvwxyz"
	body := strings.Repeat("<b>&</b> ", 1000) + "日本語"
	env, err := New(MessageCreated{Token: token, ChatNumber: 1, Number: 1, Body: body}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := codec.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Data, []byte(`\u003c`)) || !bytes.Contains(rec.Data, []byte(`<b>&</b>`)) {
		t.Errorf("payload is HTML-escaped: %.80s…", rec.Data)
	}
	if len(rec.Data) > len(body)+100 {
		t.Errorf("payload of a %d-byte body has %d bytes", len(body), len(rec.Data))
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"as written now", rec.Data},
		{"HTML-escaped, as earlier builds wrote it", escapedJSON(t, env.Event)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rec
			r.Data = tc.data
			back, err := codec.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := back.Event.(MessageCreated).Body; got != body {
				t.Errorf("decoded body of %d bytes differs from the %d bytes written", len(got), len(body))
			}
		})
	}
}

func escapedJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`\u003c`)) {
		t.Fatalf("encoding/json did not escape: %.80s", b)
	}
	return b
}
