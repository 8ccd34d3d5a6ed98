package eventstore

import (
	"encoding/json"
	"testing"
)

// TestCorrelationID reads metadata as the JSON decoder would, whether or
// not it has the shape the appender writes.
func TestCorrelationID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, meta string
		want       string
		fails      bool
	}{
		{"empty", "", "", false},
		{"none", "{}", "", false},
		{"appender's shape", `{"correlation_id":"req-1"}`, "req-1", false},
		{"escaped quote", `{"correlation_id":"a\"b"}`, `a"b`, false},
		{"escaped unicode", `{"correlation_id":"\u00e9"}`, "é", false},
		{"raw unicode", `{"correlation_id":"é"}`, "é", false},
		{"spaces", `{ "correlation_id" : "x" }`, "x", false},
		{"other field after", `{"correlation_id":"x","y":"z"}`, "x", false},
		{"control character", "{\"correlation_id\":\"a\x01\"}", "", true},
		{"malformed", `{"correlation_id":`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := correlationID([]byte(tc.meta))
			if (err != nil) != tc.fails || got != tc.want {
				t.Errorf("correlationID(%q) = %q, %v; want %q, failing %v", tc.meta, got, err, tc.want, tc.fails)
			}
			if tc.meta == "" {
				return
			}
			var m metadata
			jsonErr := json.Unmarshal([]byte(tc.meta), &m)
			if (jsonErr != nil) != (err != nil) || (err == nil && m.CorrelationID != got) {
				t.Errorf("the JSON decoder reads %q as %q, %v", tc.meta, m.CorrelationID, jsonErr)
			}
		})
	}
}
