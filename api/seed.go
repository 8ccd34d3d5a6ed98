package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
)

// The seed's routes carry the application token (and chat number) in the
// query string or the body instead of the path. Their parsers read them
// from there; the operations' handlers are the canonical routes'.

// seedToken takes app_token from the query string, else from the body.
func seedToken(r *http.Request, body optString) (string, error) {
	if t := r.URL.Query().Get("app_token"); t != "" {
		return t, nil
	}
	if !body.Set || body.Value == "" {
		return "", apperr.Validation("app_token is required")
	}
	return body.Value, nil
}

// seedChatNumber takes chat_number from the body.
func seedChatNumber(b messageBody) (int64, error) {
	if !b.ChatNumber.Set {
		return 0, apperr.Validation("chat_number is required")
	}
	if b.ChatNumber.Value < 1 {
		return 0, apperr.NotFound("chat not found")
	}
	return b.ChatNumber.Value, nil
}

// seedApp names the application of the seed's routes on chats: app_token
// in the query string, else in the body, which is decoded too. An optional
// body (the seed's GET) is read only where the query string names no
// application (seedChatBody).
func seedApp(optional bool) parser[nameBody] {
	return func(r *http.Request) (named[nameBody], error) {
		var n named[nameBody]
		if !optional || r.URL.Query().Get("app_token") == "" {
			if err := decode(r, &n.body, optional); err != nil {
				return n, err
			}
		}
		var err error
		n.token, err = seedToken(r, n.body.AppToken)
		return n, err
	}
}

// seedChat decodes the body of the seed's commands on messages and names
// their application and chat: app_token in the query string, else in the
// body; chat_number in the body, or, where the body is optional (the
// seed's DELETE), in the query string first.
func seedChat(optional bool) parser[messageBody] {
	return func(r *http.Request) (named[messageBody], error) {
		var n named[messageBody]
		if err := decode(r, &n.body, optional); err != nil {
			return n, err
		}
		var err error
		if n.token, err = seedToken(r, n.body.AppToken); err != nil {
			return n, err
		}
		if v := r.URL.Query().Get("chat_number"); optional && v != "" {
			c, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return n, apperr.Validation("chat_number must be a whole number, got %q", v)
			}
			n.body.ChatNumber.Set, n.body.ChatNumber.Value = true, c
		}
		n.chat, err = seedChatNumber(n.body)
		return n, err
	}
}

// seedTerms reads the terms of the seed's search,
// GET /chats/{app_token}/{number}/search/{q}, from its path; its links
// repeat no query parameter.
func seedTerms(r *http.Request) (string, url.Values) {
	q := chi.URLParam(r, "q")
	// The router matched on the raw path when it holds escapes (such as
	// %2F) that decoding would change; only then is q still escaped.
	if r.URL.RawPath != "" {
		if unescaped, err := url.PathUnescape(q); err == nil {
			q = unescaped
		}
	}
	return q, nil
}
