package api

import (
	"context"
	"net/http"
	"time"

	"github.com/chatsys/chat/readmodel"
)

// listMessages answers a page of a chat's messages: by number (page,
// per_page), or by cursor (after or before, per_page), waiting up to wait
// for something after the cursor (a long poll).
func (s *server) listMessages(w http.ResponseWriter, r *http.Request) error {
	c, byCursor, err := cursorParams(r)
	if err != nil {
		return err
	}
	if !byCursor {
		return s.listMessagePage(w, r)
	}
	token, chat, _, err := chatPage(r)
	if err != nil {
		return err
	}
	got, err := s.changesWithin(r.Context(), token, chat, c)
	if err != nil {
		return err
	}
	return writeItems(s, w, r, cursorLinks(r, c.span, got.From, got.To), got.List, func(c readmodel.Change) messageJSON { return messageOut(c.Message) })
}

// changesWithin reads the changes c selects; when there are none after the
// cursor it waits for some, up to c.wait, re-reading on every wake-up of
// the chat.
func (s *server) changesWithin(ctx context.Context, token string, chat int64, c cursorQuery) (readmodel.Changes, error) {
	var (
		wake <-chan struct{}
		stop = func() {}
	)
	if c.wait > 0 {
		// Watch before the first read, so that a change between the read
		// and the wait still wakes it.
		wake, stop = s.watch(token, chat)
		s.streams.open.Inc()
		defer s.streams.open.Dec()
	}
	defer stop()
	deadline := time.NewTimer(c.wait)
	defer deadline.Stop()
	for {
		got, err := s.q.Changes(ctx, token, chat, c.span)
		if err != nil || got.To > 0 || c.wait == 0 {
			return got, err
		}
		recheck := time.NewTimer(s.jitteredRecheck())
		select {
		case <-ctx.Done():
			recheck.Stop()
			return got, ctx.Err()
		case <-s.streams.stopping:
			recheck.Stop()
			return got, nil
		case <-deadline.C:
			recheck.Stop()
			return got, nil
		case <-wake:
		case <-recheck.C:
		}
		recheck.Stop()
	}
}

// admitListing holds a stream slot for a long poll (a list with a wait),
// which may wait for long, and a read slot for any other list.
func (s *server) admitListing(next http.Handler) http.Handler {
	reads, waits := s.admit(s.reads, next), s.admit(s.streams.slots, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("wait"); v != "" && v != "0" && v != "0s" {
			waits.ServeHTTP(w, r)
			return
		}
		reads.ServeHTTP(w, r)
	})
}
