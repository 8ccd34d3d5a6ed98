package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/testenv"
)

func num(v any) int64 { return int64(v.(float64)) }

// TestEveryRoute walks every route of the API, canonical and seed, as a
// client would: create, read back (eventually), rename or edit, list.
func TestEveryRoute(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)

	created := s.must(t, 201, "POST", "/applications", map[string]any{"name": "acme"})
	app := created.object(t)
	token := app["token"].(string)
	if got := created.Header.Get("Location"); got != "/applications/"+token {
		t.Errorf("Location %q", got)
	}
	if len(token) < 22 || app["name"] != "acme" || num(app["chats_count"]) != 0 {
		t.Errorf("created application %v", app)
	}
	for _, f := range []string{"created_at", "updated_at"} {
		if _, err := time.Parse(time.RFC3339Nano, app[f].(string)); err != nil || !strings.HasSuffix(app[f].(string), "Z") {
			t.Errorf("%s = %v is not UTC RFC 3339", f, app[f])
		}
	}
	// A create answers the resource as it will read back.
	read := s.eventually(t, "/applications/"+token, nil).object(t)
	if fmt.Sprint(read) != fmt.Sprint(app) {
		t.Errorf("read back %v, created %v", read, app)
	}
	renamed := s.must(t, 200, "PATCH", "/applications/"+token, map[string]any{"name": "acme inc"}).object(t)
	if renamed["name"] != "acme inc" || renamed["created_at"] != app["created_at"] {
		t.Errorf("renamed application %v", renamed)
	}
	s.eventually(t, "/applications/"+token, func(r response) bool { return r.object(t)["name"] == "acme inc" })

	// Chats: canonical with a name, without a body, and the seed's POST /chats.
	c1 := s.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"})
	if c1.Header.Get("Location") != "/applications/"+token+"/chats/1" || num(c1.object(t)["number"]) != 1 {
		t.Errorf("chat 1: %s %v", c1.Header.Get("Location"), c1.object(t))
	}
	c2 := s.must(t, 201, "POST", "/applications/"+token+"/chats", nil).object(t)
	c3 := s.must(t, 201, "POST", "/chats", map[string]any{"name": "seed", "app_token": token}).object(t)
	if num(c2["number"]) != 2 || c2["name"] != "" || num(c3["number"]) != 3 || c3["name"] != "seed" {
		t.Errorf("chats 2, 3: %v %v", c2, c3)
	}
	s.must(t, 200, "PATCH", "/applications/"+token+"/chats/2", map[string]any{"name": "renamed"})
	s.must(t, 200, "PATCH", "/chats/3", map[string]any{"name": "seed renamed", "app_token": token})
	s.eventually(t, "/applications/"+token+"/chats/2", func(r response) bool { return r.object(t)["name"] == "renamed" })
	s.eventually(t, "/chats/3?app_token="+token, func(r response) bool { return r.object(t)["name"] == "seed renamed" })
	// The seed's GET /chats/{number} also takes app_token from a JSON body.
	if r := s.call(t, "GET", "/chats/1", map[string]any{"app_token": token}); r.Status != 200 || r.object(t)["name"] != "general" {
		t.Errorf("GET /chats/1 with body: %d %s", r.Status, r.Body)
	}
	list := s.eventually(t, "/applications/"+token+"/chats", func(r response) bool {
		var l []map[string]any
		r.json(t, &l)
		return len(l) == 3
	})
	if list.Header.Get("X-Total-Count") != "3" {
		t.Errorf("X-Total-Count %q", list.Header.Get("X-Total-Count"))
	}
	s.eventually(t, "/applications/"+token, func(r response) bool { return num(r.object(t)["chats_count"]) == 3 })

	// Messages: canonical, and the seed's POST /messages with chat_number as
	// a string and as a number.
	m1 := s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "Hello, world!"})
	if m1.Header.Get("Location") != "/applications/"+token+"/chats/1/messages/1" {
		t.Errorf("message Location %q", m1.Header.Get("Location"))
	}
	if m := m1.object(t); num(m["number"]) != 1 || num(m["chat_number"]) != 1 || m["body"] != "Hello, world!" {
		t.Errorf("message 1 %v", m)
	}
	m2 := s.must(t, 201, "POST", "/messages", map[string]any{"body": "second", "chat_number": "1", "app_token": token}).object(t)
	m3 := s.must(t, 201, "POST", "/messages", map[string]any{"body": "third", "chat_number": 1, "app_token": token}).object(t)
	if num(m2["number"]) != 2 || num(m3["number"]) != 3 {
		t.Errorf("messages 2, 3: %v %v", m2, m3)
	}
	s.must(t, 200, "PATCH", "/applications/"+token+"/chats/1/messages/2", map[string]any{"body": "second, edited"})
	edited := s.must(t, 200, "PATCH", "/messages/3", map[string]any{"body": "third, edited", "chat_number": "1", "app_token": token}).object(t)
	if edited["body"] != "third, edited" {
		t.Errorf("edited %v", edited)
	}
	s.eventually(t, "/applications/"+token+"/chats/1/messages/2", func(r response) bool { return r.object(t)["body"] == "second, edited" })
	s.eventually(t, "/messages/"+token+"/1/3", func(r response) bool { return r.object(t)["body"] == "third, edited" })
	for _, path := range []string{"/applications/" + token + "/chats/1/messages", "/chats/" + token + "/1/messages"} {
		r := s.eventually(t, path, func(r response) bool {
			var l []map[string]any
			r.json(t, &l)
			return len(l) == 3
		})
		var l []map[string]any
		r.json(t, &l)
		for i, m := range l {
			if num(m["number"]) != int64(i+1) {
				t.Errorf("%s: item %d has number %v", path, i, m["number"])
			}
		}
	}
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return num(r.object(t)["messages_count"]) == 3 })
}

// TestPagination checks page ranges, Link and X-Total-Count.
func TestPagination(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "pages"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	for i := 1; i <= 7; i++ {
		s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": "m" + strconv.Itoa(i)})
	}
	base := "/applications/" + token + "/chats/1/messages"
	s.eventually(t, base, func(r response) bool { return r.Header.Get("X-Total-Count") == "7" })
	tests := []struct {
		query   string
		numbers []int64
		next    bool
		prev    bool
	}{
		{"?per_page=3", []int64{1, 2, 3}, true, false},
		{"?per_page=3&page=2", []int64{4, 5, 6}, true, true},
		{"?per_page=3&page=3", []int64{7}, false, true},
		{"?per_page=3&page=9", []int64{}, false, true},
		{"", []int64{1, 2, 3, 4, 5, 6, 7}, false, false},
	}
	for _, tc := range tests {
		r := s.must(t, 200, "GET", base+tc.query, nil)
		var l []map[string]any
		r.json(t, &l)
		got := []int64{}
		for _, m := range l {
			got = append(got, num(m["number"]))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.numbers) {
			t.Errorf("%s: numbers %v, want %v", tc.query, got, tc.numbers)
		}
		link := r.Header.Get("Link")
		if strings.Contains(link, `rel="next"`) != tc.next || strings.Contains(link, `rel="prev"`) != tc.prev {
			t.Errorf("%s: Link %q", tc.query, link)
		}
		if r.Header.Get("X-Total-Count") != "7" {
			t.Errorf("%s: X-Total-Count %q", tc.query, r.Header.Get("X-Total-Count"))
		}
	}
	if !strings.Contains(s.must(t, 200, "GET", base+"?per_page=3&page=2", nil).Header.Get("Link"), "page=3&per_page=3>; rel=\"next\"") {
		t.Error("next link does not point at page 3")
	}
	for _, q := range []string{"?page=0", "?page=x", "?per_page=0", "?per_page=1001"} {
		if r := s.call(t, "GET", base+q, nil); r.Status != http.StatusUnprocessableEntity || r.errorCode(t) != "validation_failed" {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}
