package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/ratelimit"
)

// The canonical routes' patterns. They are registered flat, each whole on
// one router, rather than in nested subrouters: chi's Match (which the
// Allow header relies on) answers true for every method on a path that
// leads into a subrouter.
const (
	appRoute      = "/applications/{token}"
	chatsRoute    = appRoute + "/chats"
	chatRoute     = chatsRoute + "/{chat}"
	messagesRoute = chatRoute + "/messages"
	// Digits only, so that …/messages/search is the search and nothing
	// else: a PATCH of it is a method the search does not take (405), not
	// an edit of a message named "search".
	messageRoute = messagesRoute + "/{message:[0-9]+}"
)

// routes builds the router: every route of the API behind the middleware
// every request goes through.
func (s *server) routes(reg *prometheus.Registry) http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.requestID, s.observe, s.boundTarget, headAsGet)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		markUnmatched(req)
		s.writeError(w, req, apperr.NotFound("no route for %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		markUnmatched(req)
		w.Header().Set("Allow", strings.Join(allowed(r, req), ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: "method_not_allowed", Message: req.Method + " is not allowed on " + req.URL.Path}})
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.Get("/openapi.yaml", serveOpenAPI)

	// A read takes no body; a command's body is read whole before it takes
	// one of the slots, so that a slot is held only while there is work.
	read := r.With(s.noBody, s.rateLimit(ratelimit.Reads), s.limitReads)
	command := r.With(s.readBody, s.rateLimit(ratelimit.Commands), s.limit)

	command.Post("/applications", s.createApplication)
	read.Get(appRoute, s.getApplication)
	command.Patch(appRoute, s.renameApplication)
	read.Get(chatsRoute, s.listChats)
	command.Post(chatsRoute, s.createChat)
	read.Get(chatRoute, s.getChat)
	command.Patch(chatRoute, s.renameChat)
	listing := r.With(s.noBody, s.rateLimit(ratelimit.Reads), s.admitListing)
	listing.Get(messagesRoute, s.listMessages)
	// A stream holds one of the stream slots for its life, not a read slot.
	r.With(s.noBody, s.rateLimit(ratelimit.Reads), s.admitStream).Get(messagesRoute+"/stream", s.streamMessages)
	command.Post(messagesRoute, s.createMessage)
	read.Get(messagesRoute+"/search", s.searchMessages)
	read.Get(messageRoute, s.getMessage)
	command.Patch(messageRoute, s.editMessage)
	command.Delete(messageRoute, s.deleteMessage)

	// The seed's routes, kept for its existing clients. Its GET of a chat
	// may carry the token in a body, read before the slot like a command's.
	r.With(s.seedChatBody, s.rateLimit(ratelimit.Reads), s.limitReads).Get("/chats/{chat}", s.seedGetChat)
	command.Post("/chats", s.seedCreateChat)
	command.Patch("/chats/{chat}", s.seedRenameChat)
	listing.Get("/chats/{token}/{chat}/messages", s.listMessages)
	read.Get("/chats/{token}/{chat}/search/{q}", s.seedSearch)
	read.Get("/messages/{token}/{chat}/{message}", s.getMessage)
	command.Post("/messages", s.seedCreateMessage)
	command.Patch("/messages/{message}", s.seedEditMessage)
	command.Delete("/messages/{message}", s.seedDeleteMessage)
	return r
}

// headAsGet serves HEAD wherever GET is served, by the GET route: the same
// status and headers, and net/http sends no body for HEAD.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc := chi.RouteContext(r.Context()); rc != nil && r.Method == http.MethodHead {
			rc.RouteMethod = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

// allowed lists the methods the router serves on the request's path, for
// the Allow header of a 405.
func allowed(mux *chi.Mux, r *http.Request) []string {
	// The router matches the escaped path when there is one.
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := m
		if m == http.MethodHead {
			probe = http.MethodGet
		}
		if mux.Match(chi.NewRouteContext(), probe, path) {
			out = append(out, m)
		}
	}
	return out
}
