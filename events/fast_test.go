package events

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/chatsys/chat/internal/plainjson"
)

// payloads are shapes of each kind of payload: as the codec writes them,
// and as it never would.
var payloads = []string{
	`{"token":"abc","name":"acme"}`,
	`{"token":"abc","number":3,"name":"général"}`,
	`{"token":"abc","chat_number":3,"number":7,"body":"héllo <b> & ünïcode ✓"}`,
	`{"token":"abc","chat_number":-0,"number":9223372036854775807,"body":""}`,
	`{"token":"abc","chat_number":-9223372036854775808,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":9223372036854775808,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":99999999999999999999,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":01,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":1.5,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":1e2,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":-,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":null,"number":1,"body":"x"}`,
	`{"token":"abc","chat_number":"1","number":1,"body":"x"}`,
	`{"token":"abc","chat_number":1,"number":1,"body":"line\nbreak \"quoted\" \u00e9"}`,
	"{\"token\":\"abc\",\"chat_number\":1,\"number\":1,\"body\":\"raw\tcontrol\"}",
	"{\"token\":\"abc\",\"chat_number\":1,\"number\":1,\"body\":\"bad \xff utf-8\"}",
	"{\"token\":\"abc\",\"chat_number\":1,\"number\":1,\"body\":\"raw \u2028 separator\"}",
	`{"token":"abc","number":1,"chat_number":1,"body":"reordered"}`,
	`{ "token":"abc","chat_number":1,"number":1,"body":"spaced"}`,
	`{"token":"abc","chat_number":1,"number":1,"body":"extra","x":1}`,
	`{"token":"abc","chat_number":1,"number":1}`,
	`{"Token":"abc","chat_number":1,"number":1,"body":"other case"}`,
	`{"token":"abc","chat_number":1,"number":1,"body":"trailing"} `,
	`{"token":"abc","chat_number":1,"number":1,"body":"unterminated}`,
	`{"token":"abc","name":"acme"}{}`,
	`{"token":"abc","name":}`,
	`{"token":"abc"`,
	`{}`,
	`[]`,
	``,
}

// decodeBoth decodes data as an E with the codec and with the JSON decoder.
func decodeBoth[E Event](t *testing.T, c *Codec, data []byte) {
	var zero E
	got, err := c.types[zero.EventType()].decode(data)
	var want E
	wantErr := json.Unmarshal(data, &want)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s %q: codec error %v, JSON decoder error %v", zero.EventType(), data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q: codec %+v, JSON decoder %+v", zero.EventType(), data, got, want)
	}
}

func decodeAll(t *testing.T, c *Codec, data []byte) {
	decodeBoth[ApplicationCreated](t, c, data)
	decodeBoth[ApplicationRenamed](t, c, data)
	decodeBoth[ChatCreated](t, c, data)
	decodeBoth[ChatRenamed](t, c, data)
	decodeBoth[MessageCreated](t, c, data)
	decodeBoth[MessageEdited](t, c, data)
}

// TestDecodeAgreesWithJSON decodes payloads of every shape as every type:
// the codec reads each as the JSON decoder does, or fails where it fails.
func TestDecodeAgreesWithJSON(t *testing.T) {
	t.Parallel()
	c := NewCodec()
	for _, p := range payloads {
		decodeAll(t, c, []byte(p))
	}
}

// FuzzDecodeAgreesWithJSON is TestDecodeAgreesWithJSON on any input
// (go test -fuzz FuzzDecodeAgreesWithJSON ./events).
func FuzzDecodeAgreesWithJSON(f *testing.F) {
	for _, p := range payloads {
		f.Add([]byte(p))
	}
	c := NewCodec()
	f.Fuzz(func(t *testing.T, data []byte) { decodeAll(t, c, data) })
}

// TestCodecOutputTakesTheFastPath checks that what the codec writes is
// read without the JSON decoder, for every kind of payload.
func TestCodecOutputTakesTheFastPath(t *testing.T) {
	t.Parallel()
	const token = "abcdefghijklmnopqrstuvwxyz"
	for _, tc := range []struct {
		ev   Event
		fast func([]byte) bool
	}{
		{ApplicationCreated{Token: token, Name: "acmé <&>"}, func(d []byte) bool { _, _, ok := fastApplication(d); return ok }},
		{ChatRenamed{Token: token, Number: 12, Name: "général"}, func(d []byte) bool { _, _, _, ok := fastChat(d); return ok }},
		{MessageEdited{Token: token, ChatNumber: 3, Number: 1234567, Body: "héllo, wörld ✓"}, func(d []byte) bool { _, _, _, _, ok := fastMessage(d); return ok }},
	} {
		data, err := plainjson.Marshal(tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		if !tc.fast(data) {
			t.Errorf("%s %s is left to the JSON decoder", tc.ev.EventType(), data)
		}
	}
}
