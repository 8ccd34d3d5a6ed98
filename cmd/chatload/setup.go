package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/chatsys/chat/internal/pause"
)

// target is one chat the load posts messages to.
type target struct {
	token    string
	chat     int64
	messages string // path of the chat's messages
}

func (t target) messagePath(number int64) string {
	return fmt.Sprintf("%s/%d", t.messages, number)
}

func (t target) searchPath(word string) string {
	return t.messages + "/search?q=" + word
}

const setupAttempts = 5

// setup creates apps applications with chats chats each and returns the
// chats, in order.
func setup(ctx context.Context, api *apiClient, apps, chats int, progress io.Writer) ([]target, error) {
	run := time.Now().UTC().Format("20060102T150405")
	targets := make([]target, 0, apps*chats)
	for a := range apps {
		var app struct {
			Token string `json:"token"`
		}
		name := fmt.Sprintf("chatload %s app %d", run, a+1)
		if err := createWithRetry(ctx, api, "/applications", name, &app); err != nil {
			return nil, fmt.Errorf("create application %d: %w", a+1, err)
		}
		if app.Token == "" {
			return nil, fmt.Errorf("create application %d: the answer has no token", a+1)
		}
		chatsPath := "/applications/" + url.PathEscape(app.Token) + "/chats"
		for c := range chats {
			var chat struct {
				Number int64 `json:"number"`
			}
			name := fmt.Sprintf("chatload chat %d", c+1)
			if err := createWithRetry(ctx, api, chatsPath, name, &chat); err != nil {
				return nil, fmt.Errorf("create chat %d of application %s: %w", c+1, app.Token, err)
			}
			if chat.Number <= 0 {
				return nil, fmt.Errorf("create chat %d of application %s: the answer has no number", c+1, app.Token)
			}
			targets = append(targets, target{
				token:    app.Token,
				chat:     chat.Number,
				messages: fmt.Sprintf("%s/%d/messages", chatsPath, chat.Number),
			})
		}
	}
	fmt.Fprintf(progress, "chatload: setup: %d applications, %d chats\n", apps, len(targets))
	return targets, nil
}

// createWithRetry posts {"name": name} to path, retrying answers that say to
// come back later and failed connections a few times.
func createWithRetry(ctx context.Context, api *apiClient, path, name string, out any) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return err
	}
	var lastErr error
	for attempt := range setupAttempts {
		if attempt > 0 {
			if err := pause.For(ctx, retryDelay(lastErr, attempt)); err != nil {
				return err
			}
		}
		lastErr = api.post(ctx, path, body, out)
		if lastErr == nil || !retryable(lastErr) {
			return lastErr
		}
	}
	return lastErr
}

func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == 503 || ae.Status == 502 || ae.Status == 504
	}
	return !errors.Is(err, context.Canceled)
}

func retryDelay(err error, attempt int) time.Duration {
	var ae *apiError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	return time.Duration(attempt) * 200 * time.Millisecond
}
