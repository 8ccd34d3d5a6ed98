package config

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name    string
		lookup  func(string) (string, bool)
		wantErr []string // every variable the error must name
	}{
		{name: "defaults", lookup: env()},
		{name: "empty values take the defaults", lookup: env("CHAT_NAMESPACE", "", "CHAT_HTTP_ADDR", "")},
		{name: "one bad value", lookup: env("CHAT_NAMESPACE", "Bad-Name"), wantErr: []string{"CHAT_NAMESPACE"}},
		{name: "every bad value at once", lookup: env(
			"CHAT_HTTP_ADDR", "8080",
			"CHAT_REDIS_URL", "http://x",
			"CHAT_MAX_IN_FLIGHT", "0",
			"CHAT_PUBLISH_TIMEOUT", "-1s",
		), wantErr: []string{"CHAT_HTTP_ADDR", "CHAT_REDIS_URL", "CHAT_MAX_IN_FLIGHT", "CHAT_PUBLISH_TIMEOUT"}},
	}
	for _, tc := range tests {
		c, err := Load(tc.lookup)
		if len(tc.wantErr) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if c.Namespace != "chat" && tc.name == "defaults" {
				t.Errorf("%s: namespace %q", tc.name, c.Namespace)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, name := range tc.wantErr {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error %q does not name %s", tc.name, err, name)
			}
		}
		if got := strings.Count(err.Error(), "\n") + 1; got != len(tc.wantErr) {
			t.Errorf("%s: %d lines of error, want %d: %q", tc.name, got, len(tc.wantErr), err)
		}
	}
}
