package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/apptoken"
)

// named is what a request names: its application's token, the chat of a
// route on a chat's messages, the number of the chat or message a command
// acts on (commandOf), and its decoded body.
type named[B any] struct {
	token  string
	chat   int64
	number int64
	body   B
}

// parser reads what a request names from where its route carries it: the
// path of the canonical routes, or the query string and body of the
// seed's (seed.go). Both kinds of route then share one handler per
// operation.
type parser[B any] func(r *http.Request) (named[B], error)

// The bodies the commands take; app_token and chat_number are the seed's.
type nameBody struct {
	Name     optString `json:"name"`
	AppToken optString `json:"app_token"`
}

type messageBody struct {
	Body       optString  `json:"body"`
	ChatNumber flexNumber `json:"chat_number"`
	AppToken   optString  `json:"app_token"`
}

// appInPath names the path's application; the route takes no body.
func appInPath(r *http.Request) (named[nameBody], error) {
	return named[nameBody]{token: chi.URLParam(r, "token")}, nil
}

// appAndBody names the path's application and decodes the body, which
// may be absent where optional.
func appAndBody(optional bool) parser[nameBody] {
	return func(r *http.Request) (named[nameBody], error) {
		n := named[nameBody]{token: chi.URLParam(r, "token")}
		return n, decode(r, &n.body, optional)
	}
}

// chatAndBody decodes the body and names the path's application and chat,
// in that order; the body may be absent where optional.
func chatAndBody(optional bool) parser[messageBody] {
	return func(r *http.Request) (named[messageBody], error) {
		n := named[messageBody]{token: chi.URLParam(r, "token")}
		if err := decode(r, &n.body, optional); err != nil {
			return n, err
		}
		var err error
		n.chat, err = pathNumber(chi.URLParam(r, "chat"), "chat")
		return n, err
	}
}

// commandOf reads what a command names, in the order its errors are
// answered: what parse names; the path's number of what, the chat or
// message it acts on ("" for a create, which acts on none); its
// Idempotency-Key.
func commandOf[B any](r *http.Request, parse parser[B], what string) (named[B], string, error) {
	req, err := parse(r)
	if err != nil {
		return req, "", err
	}
	if what != "" {
		if req.number, err = pathNumber(chi.URLParam(r, what), what); err != nil {
			return req, "", err
		}
	}
	key, err := commandKey(r)
	return req, key, err
}

// checkApp refuses a token that does not have a token's shape: it names
// nothing, so a read answers 404 without a lookup.
func checkApp(token string) error {
	if !apptoken.Valid(token) {
		return apperr.NotFound("application not found")
	}
	return nil
}
