package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/chatsys/chat/internal/pause"
)

// readableTimeout bounds the wait, after the load, for every 201 to read back.
const readableTimeout = 60 * time.Second

// readableResult says whether every message answered 201 reads back: each
// chat's messages_count reached the number of 201s it was given.
type readableResult struct {
	Created int64         `json:"created"`
	Counted int64         `json:"counted"`
	After   time.Duration `json:"after_ns"`
	Missing int64         `json:"missing"`
}

// countReadable waits until each target chat's messages_count holds at least
// the 201s its creates got (warm-up included), or until readableTimeout.
// A count can only be higher: a create answered 503 may be stored too.
func countReadable(ctx context.Context, api *apiClient, targets []target, created []atomic.Int64) readableResult {
	start := time.Now()
	var res readableResult
	for i := range created {
		res.Created += created[i].Load()
	}
	for {
		res.Counted, res.Missing = 0, 0
		for i, t := range targets {
			n, err := api.messagesCount(ctx, t)
			want := created[i].Load()
			if err != nil {
				n = 0
			}
			res.Counted += min(n, want)
			res.Missing += max(want-n, 0)
		}
		res.After = time.Since(start)
		if res.Missing == 0 || res.After > readableTimeout || pause.For(ctx, 100*time.Millisecond) != nil {
			return res
		}
	}
}

// messagesCount reads a chat's messages_count.
func (c *apiClient) messagesCount(ctx context.Context, t target) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/applications/%s/chats/%d", c.base, t.token, t.chat), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var chat struct {
		MessagesCount int64 `json:"messages_count"`
	}
	err = json.NewDecoder(resp.Body).Decode(&chat)
	return chat.MessagesCount, err
}
