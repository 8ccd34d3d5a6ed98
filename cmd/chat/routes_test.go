package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chatsys/chat/internal/testenv"
)

func TestSmoke(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	app := s.must(t, http.StatusCreated, "POST", "/applications", map[string]any{"name": "acme"}).object(t)
	token := app["token"].(string)
	chat := s.must(t, http.StatusCreated, "POST", "/applications/"+token+"/chats", map[string]any{"name": "general"}).object(t)
	if chat["number"].(float64) != 1 {
		t.Fatalf("chat %v", chat)
	}
	for i := 1; i <= 3; i++ {
		m := s.must(t, http.StatusCreated, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": fmt.Sprint("hello ", i)}).object(t)
		if m["number"].(float64) != float64(i) {
			t.Fatalf("message %v", m)
		}
	}
	s.eventually(t, "/applications/"+token+"/chats/1", func(r response) bool { return r.object(t)["messages_count"].(float64) == 3 })
	s.eventually(t, "/applications/"+token, func(r response) bool { return r.object(t)["chats_count"].(float64) == 1 })
}
