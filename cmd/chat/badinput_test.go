package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
)

// TestBadInput sends each kind of bad request of api/openapi.yaml and checks its
// status, its error code, and that it changed nothing: no event is stored
// and no number is used up.
func TestBadInput(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "acme"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"})
	s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "first"})
	const events = 3

	unknown := strings.Repeat("a", 26)
	app := "/applications/" + token
	long := strings.Repeat("é", 256)
	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string
		status      int
		code        string
	}{
		{"malformed JSON", "POST", "/applications", `{"name":`, "", 400, "invalid_json"},
		{"name of the wrong type", "POST", "/applications", `{"name": 5}`, "", 400, "invalid_json"},
		{"an array, not an object", "POST", "/applications", `["acme"]`, "", 400, "invalid_json"},
		{"two JSON values", "POST", "/applications", `{"name":"a"} {"name":"b"}`, "", 400, "invalid_json"},
		{"no body", "POST", "/applications", ``, "", 400, "invalid_json"},
		{"empty name", "POST", "/applications", `{"name": ""}`, "", 422, "validation_failed"},
		{"blank name", "POST", "/applications", `{"name": "   "}`, "", 422, "validation_failed"},
		{"missing name", "POST", "/applications", `{}`, "", 422, "validation_failed"},
		{"name of 256 characters", "POST", "/applications", `{"name": "` + long + `"}`, "", 422, "validation_failed"},
		{"body over 1 MiB", "POST", "/applications", `{"name": "` + strings.Repeat("x", 1<<20) + `"}`, "", 413, "payload_too_large"},
		{"not JSON", "POST", "/applications", `name=acme`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"rename unknown application", "PATCH", "/applications/" + unknown, `{"name": "x"}`, "", 404, "not_found"},
		{"rename with empty name", "PATCH", app, `{"name": ""}`, "", 422, "validation_failed"},
		{"read unknown application", "GET", "/applications/" + unknown, ``, "", 404, "not_found"},
		{"read malformed token", "GET", "/applications/not-a-token", ``, "", 404, "not_found"},
		{"chat with empty name", "POST", app + "/chats", `{"name": ""}`, "", 422, "validation_failed"},
		{"chat with name of the wrong type", "POST", app + "/chats", `{"name": ["x"]}`, "", 400, "invalid_json"},
		{"chat in unknown application", "POST", "/applications/" + unknown + "/chats", `{"name": "x"}`, "", 404, "not_found"},
		{"seed chat without app_token", "POST", "/chats", `{"name": "x"}`, "", 422, "validation_failed"},
		{"rename unknown chat", "PATCH", app + "/chats/9", `{"name": "x"}`, "", 404, "not_found"},
		{"read chat number that is not a number", "GET", app + "/chats/abc", ``, "", 404, "not_found"},
		{"read unknown chat", "GET", app + "/chats/9", ``, "", 404, "not_found"},
		{"message in unknown chat", "POST", app + "/chats/9/messages", `{"body": "x"}`, "", 404, "not_found"},
		{"message with empty body", "POST", app + "/chats/1/messages", `{"body": ""}`, "", 422, "validation_failed"},
		{"message without body", "POST", app + "/chats/1/messages", `{}`, "", 422, "validation_failed"},
		{"message body over 64 KiB", "POST", app + "/chats/1/messages", `{"body": "` + strings.Repeat("x", 64<<10+1) + `"}`, "", 422, "validation_failed"},
		{"message body of the wrong type", "POST", app + "/chats/1/messages", `{"body": 1}`, "", 400, "invalid_json"},
		{"seed message with chat_number not a number", "POST", "/messages", `{"body": "x", "chat_number": "one", "app_token": "` + token + `"}`, "", 400, "invalid_json"},
		{"seed message without chat_number", "POST", "/messages", `{"body": "x", "app_token": "` + token + `"}`, "", 422, "validation_failed"},
		{"seed message without app_token", "POST", "/messages", `{"body": "x", "chat_number": 1}`, "", 422, "validation_failed"},
		{"edit unknown message", "PATCH", app + "/chats/1/messages/9", `{"body": "x"}`, "", 404, "not_found"},
		{"edit with empty body", "PATCH", app + "/chats/1/messages/1", `{"body": " "}`, "", 422, "validation_failed"},
		{"read unknown message", "GET", app + "/chats/1/messages/9", ``, "", 404, "not_found"},
		{"name not UTF-8", "POST", "/applications", "{\"name\": \"a\xffb\"}", "", 400, "invalid_json"},
		{"chat name with an encoded surrogate", "POST", app + "/chats", "{\"name\": \"\xed\xa0\x80\"}", "", 400, "invalid_json"},
		{"message body with an escaped surrogate alone", "POST", app + "/chats/1/messages", `{"body": "a\ud800"}`, "", 400, "invalid_json"},
		{"seed edit with a truncated character", "PATCH", "/messages/1", "{\"body\": \"x\xc3\", \"chat_number\": 1, \"app_token\": \"" + token + "\"}", "", 400, "invalid_json"},
		{"seed message with its body given twice", "POST", "/messages", `{"body": "x", "chat_number": 1, "app_token": "` + token + `", "BODY": "y"}`, "", 400, "invalid_json"},
		{"wrong method on an application", "DELETE", app, ``, "", 405, "method_not_allowed"},
		{"wrong method on the collection", "PUT", "/applications", `{"name": "x"}`, "", 405, "method_not_allowed"},
		{"unknown route", "GET", "/nope", ``, "", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			ct := tc.contentType
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r := response{Status: resp.StatusCode, Header: resp.Header}
			r.Body = readAll(t, resp)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if code := r.errorCode(t); code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.status == 405 && r.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}

	// Nothing changed: the next numbers are the next ones, and the event
	// store holds only the events of the successful requests.
	if n := s.must(t, 201, "POST", app+"/chats", nil).object(t)["number"]; n != float64(2) {
		t.Errorf("next chat number %v, want 2", n)
	}
	if n := s.must(t, 201, "POST", app+"/chats/1/messages", map[string]any{"body": strings.Repeat("é", 32<<10)}).object(t)["number"]; n != float64(2) {
		t.Errorf("next message number %v, want 2 (a body of exactly 64 KiB is allowed)", n)
	}
	if r := s.must(t, 201, "POST", "/applications", map[string]any{"name": strings.Repeat("é", 255)}); r.object(t)["name"] != strings.Repeat("é", 255) {
		t.Error("a name of 255 characters is allowed")
	}
	db := testenv.DB(t, cfg)
	testenv.Eventually(t, 10*time.Second, "events stored", func() bool {
		var n int
		err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+catalog.New(cfg.Namespace).Events()).Scan(&n)
		return err == nil && n == events+3
	})
}
