package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatsys/chat/apperr"
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
	notFound := func(w http.ResponseWriter, req *http.Request) {
		markUnmatched(req)
		s.writeError(w, req, apperr.NotFound("no route for %s %s", answeredAs(req), req.URL.Path))
	}
	r.NotFound(notFound)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		methods := allowed(r, req)
		// The router sends a method it does not know (PROPFIND) here
		// whatever the path: a path that serves no method has no route.
		if len(methods) == 0 {
			notFound(w, req)
			return
		}
		markUnmatched(req)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: "method_not_allowed", Message: answeredAs(req) + " is not allowed on " + req.URL.Path}})
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.Get("/openapi.yaml", serveOpenAPI)

	// A read takes no body; a command's body is read whole before it takes
	// one of the slots, so that a slot is held only while there is work.
	read := r.With(s.noBody, s.rateLimit(ReadRequest), s.limitReads)
	command := r.With(s.readBody, s.rateLimit(CommandRequest), s.limit)

	command.Post("/applications", s.answer(s.createApplication))
	read.Get(appRoute, s.answer(s.getApplication))
	command.Patch(appRoute, s.answer(s.renameApplication))
	read.Get(chatsRoute, s.answer(s.listChats))
	command.Post(chatsRoute, s.answer(s.createChat(appAndBody(true))))
	read.Get(chatRoute, s.answer(s.getChat(appInPath)))
	command.Patch(chatRoute, s.answer(s.renameChat(appAndBody(false))))
	listing := r.With(s.noBody, s.rateLimit(ReadRequest), s.admitListing)
	listing.Get(messagesRoute, s.answer(s.listMessages))
	// A stream holds one of the stream slots for its life, not a read slot.
	r.With(s.noBody, s.rateLimit(ReadRequest), s.admitStream).Get(messagesRoute+"/stream", s.answer(s.streamMessages))
	command.Post(messagesRoute, s.answer(s.createMessage(chatAndBody(false))))
	read.Get(messagesRoute+"/search", s.answer(s.searchMessages(queryTerms)))
	read.Get(messageRoute, s.answer(s.getMessage))
	command.Patch(messageRoute, s.answer(s.editMessage(chatAndBody(false))))
	command.Delete(messageRoute, s.answer(s.deleteMessage(chatAndBody(true))))

	// The seed's routes, kept for its existing clients: the same handlers,
	// with parsers that read the token and chat where the seed puts them.
	// Its GET of a chat may carry the token in a body, read before the
	// slot like a command's.
	r.With(s.seedChatBody, s.rateLimit(ReadRequest), s.limitReads).Get("/chats/{chat}", s.answer(s.getChat(seedApp(true))))
	command.Post("/chats", s.answer(s.createChat(seedApp(false))))
	command.Patch("/chats/{chat}", s.answer(s.renameChat(seedApp(false))))
	listing.Get("/chats/{token}/{chat}/messages", s.answer(s.listMessages))
	read.Get("/chats/{token}/{chat}/search/{q}", s.answer(s.searchMessages(seedTerms)))
	read.Get("/messages/{token}/{chat}/{message}", s.answer(s.getMessage))
	command.Post("/messages", s.answer(s.createMessage(seedChat(false))))
	command.Patch("/messages/{message}", s.answer(s.editMessage(seedChat(false))))
	command.Delete("/messages/{message}", s.answer(s.deleteMessage(seedChat(true))))
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

// answeredAs is the method an answer names: a HEAD is answered as its GET
// would be, to the Content-Length.
func answeredAs(r *http.Request) string {
	if r.Method == http.MethodHead {
		return http.MethodGet
	}
	return r.Method
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
