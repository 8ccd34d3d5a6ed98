package api

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/readmodel"
)

type nameBody struct {
	Name     optString `json:"name"`
	AppToken optString `json:"app_token"`
}

type messageBody struct {
	Body       optString  `json:"body"`
	ChatNumber flexNumber `json:"chat_number"`
	AppToken   optString  `json:"app_token"`
}

func (s *server) createApplication(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	app, err := s.cmd.CreateApplication(r.Context(), commands.CreateApplication{Name: b.Name.Value, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", applicationPath(app.Token))
	writeJSON(w, http.StatusCreated, applicationOut(readmodel.Application{
		Token: app.Token, Name: app.Name, CreatedAt: app.CreatedAt, UpdatedAt: app.UpdatedAt,
	}))
}

func (s *server) getApplication(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	if !commands.ValidToken(token) {
		s.writeError(w, r, apperr.NotFound("application not found"))
		return
	}
	app, err := s.q.Application(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, applicationOut(app))
}

func (s *server) renameApplication(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	token := chi.URLParam(r, "token")
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cmd.RenameApplication(r.Context(), commands.RenameApplication{Token: token, Name: b.Name.Value, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The rest of the resource comes from the read side; if it lags behind
	// the create, the answer falls back to what the command knows.
	app, err := s.q.Application(r.Context(), token)
	if err != nil {
		app = readmodel.Application{Token: token, CreatedAt: res.UpdatedAt}
	}
	app.Name, app.UpdatedAt = res.Name, res.UpdatedAt
	writeJSON(w, http.StatusOK, applicationOut(app))
}

// listChats answers a page of an application's chats: by number (page,
// per_page), or by cursor (after or before a chat's number, per_page).
func (s *server) listChats(w http.ResponseWriter, r *http.Request) {
	c, byCursor, err := cursorParams(r)
	if err == nil && c.wait > 0 {
		err = apperr.InvalidCursor("wait is for a chat's messages; a list of chats answers at once")
	}
	if err == nil && !byCursor {
		s.listChatPage(w, r)
		return
	}
	token := chi.URLParam(r, "token")
	if err == nil && !commands.ValidToken(token) {
		err = apperr.NotFound("application not found")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	got, err := s.q.ChatSpan(r.Context(), token, c.span)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeItems(s, w, r, cursorLinks(r, c.span, got.From, got.To), got.List, chatOut)
}

func (s *server) listChatPage(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	token := chi.URLParam(r, "token")
	if !commands.ValidToken(token) {
		s.writeError(w, r, apperr.NotFound("application not found"))
		return
	}
	list, err := s.q.Chats(r.Context(), token, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeList(s, w, r, p, nil, list, chatOut)
}

func (s *server) createChat(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doCreateChat(w, r, chi.URLParam(r, "token"), b)
}

func (s *server) doCreateChat(w http.ResponseWriter, r *http.Request, token string, b nameBody) {
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := s.cmd.CreateChat(r.Context(), commands.CreateChat{Token: token, Name: b.Name.Value, HasName: b.Name.Set, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", chatPath(token, chat.Number))
	writeJSON(w, http.StatusCreated, chatOut(readmodel.Chat{
		Number: chat.Number, Name: chat.Name, CreatedAt: chat.CreatedAt, UpdatedAt: chat.UpdatedAt,
	}))
}

func (s *server) getChat(w http.ResponseWriter, r *http.Request) {
	s.doGetChat(w, r, chi.URLParam(r, "token"))
}

func (s *server) doGetChat(w http.ResponseWriter, r *http.Request, token string) {
	if !commands.ValidToken(token) {
		s.writeError(w, r, apperr.NotFound("application not found"))
		return
	}
	number, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := s.q.Chat(r.Context(), token, number)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chatOut(chat))
}

func (s *server) renameChat(w http.ResponseWriter, r *http.Request) {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doRenameChat(w, r, chi.URLParam(r, "token"), b)
}

func (s *server) doRenameChat(w http.ResponseWriter, r *http.Request, token string, b nameBody) {
	number, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.cmd.RenameChat(r.Context(), commands.RenameChat{Token: token, Number: number, Name: b.Name.Value, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := s.q.Chat(r.Context(), token, number)
	if err != nil {
		chat = readmodel.Chat{Number: number, CreatedAt: res.UpdatedAt}
	}
	chat.Name, chat.UpdatedAt = res.Name, res.UpdatedAt
	writeJSON(w, http.StatusOK, chatOut(chat))
}

func (s *server) listMessagePage(w http.ResponseWriter, r *http.Request) {
	token, chat, p, err := chatPage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.q.Messages(r.Context(), token, chat, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeMessages(w, r, p, nil, list)
}

// chatPage reads the token and chat number from the path and the page from
// the query string, as every list of a chat's messages takes them.
func chatPage(r *http.Request) (string, int64, readmodel.Page, error) {
	p, err := page(r)
	if err != nil {
		return "", 0, p, err
	}
	token := chi.URLParam(r, "token")
	if !commands.ValidToken(token) {
		return "", 0, p, apperr.NotFound("application not found")
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	return token, chat, p, err
}

// writeMessages answers one page of messages; keep are the route's own
// query parameters, which its links repeat.
func (s *server) writeMessages(w http.ResponseWriter, r *http.Request, p readmodel.Page, keep url.Values, list readmodel.List[readmodel.Message]) {
	writeList(s, w, r, p, keep, list, messageOut)
}

func (s *server) createMessage(w http.ResponseWriter, r *http.Request) {
	var b messageBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doCreateMessage(w, r, chi.URLParam(r, "token"), chat, b)
}

func (s *server) doCreateMessage(w http.ResponseWriter, r *http.Request, token string, chat int64, b messageBody) {
	key, err := commandKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, err := s.cmd.CreateMessage(r.Context(), commands.CreateMessage{Token: token, ChatNumber: chat, Body: b.Body.Value, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", messagePath(token, chat, msg.Number))
	writeJSON(w, http.StatusCreated, messageOut(readmodel.Message{
		ChatNumber: chat, Number: msg.Number, Body: msg.Body, CreatedAt: msg.CreatedAt, UpdatedAt: msg.UpdatedAt,
	}))
}

func (s *server) getMessage(w http.ResponseWriter, r *http.Request) {
	token := chi.URLParam(r, "token")
	if !commands.ValidToken(token) {
		s.writeError(w, r, apperr.NotFound("application not found"))
		return
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	number, err := pathNumber(chi.URLParam(r, "message"), "message")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, err := s.q.Message(r.Context(), token, chat, number)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, messageOut(msg))
}

func (s *server) editMessage(w http.ResponseWriter, r *http.Request) {
	var b messageBody
	if err := decode(r, &b, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.doEditMessage(w, r, chi.URLParam(r, "token"), chat, b)
}

func (s *server) doEditMessage(w http.ResponseWriter, r *http.Request, token string, chat int64, b messageBody) {
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
	res, err := s.cmd.EditMessage(r.Context(), commands.EditMessage{Token: token, ChatNumber: chat, Number: number, Body: b.Body.Value, IdempotencyKey: key})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, err := s.q.Message(r.Context(), token, chat, number)
	if err != nil {
		msg = readmodel.Message{ChatNumber: chat, Number: number, CreatedAt: res.UpdatedAt}
	}
	msg.Body, msg.UpdatedAt = res.Body, res.UpdatedAt
	writeJSON(w, http.StatusOK, messageOut(msg))
}
