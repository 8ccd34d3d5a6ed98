package api

import (
	"net/http"

	"github.com/chatsys/chat/commands"
)

// deleteMessage answers DELETE of the path's message of the chat parse
// names: 204 once the delete is in the log. The message then reads as
// deleted (GET is 404 message_deleted, lists keep its number's place
// without a body), and its words are erased from the log. A body is not
// needed; one sent must still be JSON, as every command's is.
func (s *server) deleteMessage(parse parser[messageBody]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, key, err := commandOf(r, parse, "message")
		if err != nil {
			return err
		}
		if _, err := s.cmd.DeleteMessage(r.Context(), commands.DeleteMessage{Token: req.token, ChatNumber: req.chat, Number: req.number, IdempotencyKey: key}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
