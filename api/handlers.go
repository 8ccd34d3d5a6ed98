package api

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/readmodel"
)

func (s *server) createApplication(w http.ResponseWriter, r *http.Request) error {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		return err
	}
	key, err := commandKey(r)
	if err != nil {
		return err
	}
	app, err := s.cmd.CreateApplication(r.Context(), commands.CreateApplication{Name: b.Name.Value, IdempotencyKey: key})
	if err != nil {
		return err
	}
	w.Header().Set("Location", applicationPath(app.Token))
	writeJSON(w, http.StatusCreated, applicationOut(readmodel.Application{
		Token: app.Token, Name: app.Name, CreatedAt: app.CreatedAt, UpdatedAt: app.UpdatedAt,
	}))
	return nil
}

func (s *server) getApplication(w http.ResponseWriter, r *http.Request) error {
	token := chi.URLParam(r, "token")
	if err := checkApp(token); err != nil {
		return err
	}
	app, err := s.q.Application(r.Context(), token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, applicationOut(app))
	return nil
}

func (s *server) renameApplication(w http.ResponseWriter, r *http.Request) error {
	var b nameBody
	if err := decode(r, &b, false); err != nil {
		return err
	}
	token := chi.URLParam(r, "token")
	key, err := commandKey(r)
	if err != nil {
		return err
	}
	res, err := s.cmd.RenameApplication(r.Context(), commands.RenameApplication{Token: token, Name: b.Name.Value, IdempotencyKey: key})
	if err != nil {
		return err
	}
	// The rest of the resource comes from the read side; if it lags behind
	// the create, the answer falls back to what the command knows.
	app, err := s.q.Application(r.Context(), token)
	if err != nil {
		app = readmodel.Application{Token: token, CreatedAt: res.UpdatedAt}
	}
	app.Name, app.UpdatedAt = res.Name, res.UpdatedAt
	writeJSON(w, http.StatusOK, applicationOut(app))
	return nil
}

// listChats answers a page of an application's chats: by number (page,
// per_page), or by cursor (after or before a chat's number, per_page).
func (s *server) listChats(w http.ResponseWriter, r *http.Request) error {
	c, byCursor, err := cursorParams(r)
	if err == nil && c.wait > 0 {
		err = apperr.InvalidCursor("wait is for a chat's messages; a list of chats answers at once")
	}
	if err != nil {
		return err
	}
	if !byCursor {
		return s.listChatPage(w, r)
	}
	token := chi.URLParam(r, "token")
	if err := checkApp(token); err != nil {
		return err
	}
	got, err := s.q.ChatSpan(r.Context(), token, c.span)
	if err != nil {
		return err
	}
	return writeItems(s, w, r, cursorLinks(r, c.span, got.From, got.To), got.List, chatOut)
}

func (s *server) listChatPage(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	token := chi.URLParam(r, "token")
	if err := checkApp(token); err != nil {
		return err
	}
	list, err := s.q.Chats(r.Context(), token, p)
	if err != nil {
		return err
	}
	return writeList(s, w, r, p, nil, list, chatOut)
}

// createChat creates a chat in the application parse names.
func (s *server) createChat(parse parser[nameBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, key, err := commandOf(r, parse, "")
		if err != nil {
			return err
		}
		chat, err := s.cmd.CreateChat(r.Context(), commands.CreateChat{Token: req.token, Name: req.body.Name.Value, HasName: req.body.Name.Set, IdempotencyKey: key})
		if err != nil {
			return err
		}
		w.Header().Set("Location", chatPath(req.token, chat.Number))
		writeJSON(w, http.StatusCreated, chatOut(readmodel.Chat{
			Number: chat.Number, Name: chat.Name, CreatedAt: chat.CreatedAt, UpdatedAt: chat.UpdatedAt,
		}))
		return nil
	}
}

// getChat answers the path's chat of the application parse names.
func (s *server) getChat(parse parser[nameBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := parse(r)
		if err != nil {
			return err
		}
		if err := checkApp(req.token); err != nil {
			return err
		}
		number, err := pathNumber(chi.URLParam(r, "chat"), "chat")
		if err != nil {
			return err
		}
		chat, err := s.q.Chat(r.Context(), req.token, number)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, chatOut(chat))
		return nil
	}
}

// renameChat renames the path's chat of the application parse names.
func (s *server) renameChat(parse parser[nameBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, key, err := commandOf(r, parse, "chat")
		if err != nil {
			return err
		}
		res, err := s.cmd.RenameChat(r.Context(), commands.RenameChat{Token: req.token, Number: req.number, Name: req.body.Name.Value, IdempotencyKey: key})
		if err != nil {
			return err
		}
		chat, err := s.q.Chat(r.Context(), req.token, req.number)
		if err != nil {
			chat = readmodel.Chat{Number: req.number, CreatedAt: res.UpdatedAt}
		}
		chat.Name, chat.UpdatedAt = res.Name, res.UpdatedAt
		writeJSON(w, http.StatusOK, chatOut(chat))
		return nil
	}
}

func (s *server) listMessagePage(w http.ResponseWriter, r *http.Request) error {
	token, chat, p, err := chatPage(r)
	if err != nil {
		return err
	}
	list, err := s.q.Messages(r.Context(), token, chat, p)
	if err != nil {
		return err
	}
	return s.writeMessages(w, r, p, nil, list)
}

// chatPage reads the token and chat number from the path and the page from
// the query string, as every list of a chat's messages takes them.
func chatPage(r *http.Request) (string, int64, readmodel.Page, error) {
	p, err := page(r)
	if err != nil {
		return "", 0, p, err
	}
	token := chi.URLParam(r, "token")
	if err := checkApp(token); err != nil {
		return "", 0, p, err
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	return token, chat, p, err
}

// writeMessages answers one page of messages; keep are the route's own
// query parameters, which its links repeat.
func (s *server) writeMessages(w http.ResponseWriter, r *http.Request, p readmodel.Page, keep url.Values, list readmodel.List[readmodel.Message]) error {
	return writeList(s, w, r, p, keep, list, messageOut)
}

// createMessage creates a message in the chat parse names.
func (s *server) createMessage(parse parser[messageBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, key, err := commandOf(r, parse, "")
		if err != nil {
			return err
		}
		msg, err := s.cmd.CreateMessage(r.Context(), commands.CreateMessage{Token: req.token, ChatNumber: req.chat, Body: req.body.Body.Value, IdempotencyKey: key})
		if err != nil {
			return err
		}
		w.Header().Set("Location", messagePath(req.token, req.chat, msg.Number))
		writeJSON(w, http.StatusCreated, messageOut(readmodel.Message{
			ChatNumber: req.chat, Number: msg.Number, Body: msg.Body, CreatedAt: msg.CreatedAt, UpdatedAt: msg.UpdatedAt,
		}))
		return nil
	}
}

func (s *server) getMessage(w http.ResponseWriter, r *http.Request) error {
	token := chi.URLParam(r, "token")
	if err := checkApp(token); err != nil {
		return err
	}
	chat, err := pathNumber(chi.URLParam(r, "chat"), "chat")
	if err != nil {
		return err
	}
	number, err := pathNumber(chi.URLParam(r, "message"), "message")
	if err != nil {
		return err
	}
	msg, err := s.q.Message(r.Context(), token, chat, number)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, messageOut(msg))
	return nil
}

// editMessage edits the path's message of the chat parse names.
func (s *server) editMessage(parse parser[messageBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, key, err := commandOf(r, parse, "message")
		if err != nil {
			return err
		}
		res, err := s.cmd.EditMessage(r.Context(), commands.EditMessage{Token: req.token, ChatNumber: req.chat, Number: req.number, Body: req.body.Body.Value, IdempotencyKey: key})
		if err != nil {
			return err
		}
		msg, err := s.q.Message(r.Context(), req.token, req.chat, req.number)
		if err != nil {
			msg = readmodel.Message{ChatNumber: req.chat, Number: req.number, CreatedAt: res.UpdatedAt}
		}
		msg.Body, msg.UpdatedAt = res.Body, res.UpdatedAt
		writeJSON(w, http.StatusOK, messageOut(msg))
		return nil
	}
}
