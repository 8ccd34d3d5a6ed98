package api

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
)

// deleteMessage answers DELETE …/messages/{message}: 204 once the delete is
// in the log. The message then reads as deleted (GET is 404
// message_deleted, lists keep its number's place without a body), and its
// words are erased from the log.
func (s *server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	// A body is not needed; one sent must still be JSON, as every
	// command's is.
	var b messageBody
	if err := decode(r, &b, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doDeleteMessage(w, r, chi.URLParam(r, "token"), chat)
}

// seedDeleteMessage answers DELETE /messages/{message}, the seed's style:
// app_token and chat_number in the query string or a JSON body.
func (s *server) seedDeleteMessage(w http.ResponseWriter, r *http.Request) {
	var b messageBody
	if err := decode(r, &b, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if v := r.URL.Query().Get("chat_number"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.writeError(w, r, apperr.Validation("chat_number must be a whole number, got %q", v))
			return
		}
		b.ChatNumber.Set, b.ChatNumber.Value = true, n
	}
	chat, err := seedChatNumber(b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doDeleteMessage(w, r, token, chat)
}

func (s *server) doDeleteMessage(w http.ResponseWriter, r *http.Request, token string, chat int64) {
	number, err := pathNumber(chi.URLParam(r, "message"), "message")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.cmd.DeleteMessage(r.Context(), commands.DeleteMessage{Token: token, ChatNumber: chat, Number: number, IdempotencyKey: key}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
