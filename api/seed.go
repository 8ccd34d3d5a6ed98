package api

import (
	"net/http"

	"github.com/chatsys/chat/apperr"
)

// The seed's routes carry the application token (and chat number) in the
// query string or the body instead of the path; they share the canonical
// handlers' logic.

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

func (s *server) seedGetChat(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if r.URL.Query().Get("app_token") == "" {
		if err := decode(r, &b, true); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doGetChat(w, r, token)
}

func (s *server) seedCreateChat(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doCreateChat(w, r, token, b)
}

func (s *server) seedRenameChat(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doRenameChat(w, r, token, b)
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

func (s *server) seedCreateMessage(w http.ResponseWriter, r *http.Request) {
	var b messageBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := seedChatNumber(b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doCreateMessage(w, r, token, chat, b)
}

func (s *server) seedEditMessage(w http.ResponseWriter, r *http.Request) {
	var b messageBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, err := seedToken(r, b.AppToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := seedChatNumber(b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doEditMessage(w, r, token, chat, b)
}
