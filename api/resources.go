package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/readmodel"
	"github.com/chatsys/chat/redact"
)

// The JSON shapes of the API (api/openapi.yaml).
type applicationJSON struct {
	Token      string `json:"token"`
	Name       string `json:"name"`
	ChatsCount int64  `json:"chats_count"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

type chatJSON struct {
	Number        int64  `json:"number"`
	Name          string `json:"name"`
	MessagesCount int64  `json:"messages_count"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

// messageJSON is a message; a deleted one, which lists show in its
// number's place, has deleted_at and no body.
type messageJSON struct {
	Number     int64  `json:"number"`
	ChatNumber int64  `json:"chat_number"`
	Body       string `json:"body,omitempty"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
	DeletedAt  string `json:"deleted_at,omitempty"`
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func applicationOut(a readmodel.Application) applicationJSON {
	return applicationJSON{a.Token, a.Name, a.ChatsCount, ts(a.CreatedAt), ts(a.UpdatedAt)}
}

func chatOut(c readmodel.Chat) chatJSON {
	return chatJSON{c.Number, c.Name, c.MessagesCount, ts(c.CreatedAt), ts(c.UpdatedAt)}
}

func messageOut(m readmodel.Message) messageJSON {
	out := messageJSON{m.Number, m.ChatNumber, m.Body, ts(m.CreatedAt), ts(m.UpdatedAt), ""}
	if m.Deleted() {
		out.Body, out.DeletedAt = "", ts(m.DeletedAt)
	}
	return out
}

func applicationPath(token string) string { return "/applications/" + token }
func chatPath(token string, chat int64) string {
	return fmt.Sprintf("/applications/%s/chats/%d", token, chat)
}
func messagePath(token string, chat, number int64) string {
	return fmt.Sprintf("/applications/%s/chats/%d/messages/%d", token, chat, number)
}

const (
	defaultPerPage = 50
	maxPerPage     = 1000
	maxPage        = 1 << 32
)

// page reads page and per_page from the query string.
func page(r *http.Request) (readmodel.Page, error) {
	p := readmodel.Page{Number: 1, PerPage: defaultPerPage}
	for _, f := range []struct {
		name   string
		dst    *int64
		lo, hi int64
	}{{"page", &p.Number, 1, maxPage}, {"per_page", &p.PerPage, 1, maxPerPage}} {
		v := r.URL.Query().Get(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < f.lo || n > f.hi {
			return p, apperr.Validation("%s must be a whole number from %d to %d", f.name, f.lo, f.hi)
		}
		*f.dst = n
	}
	return p, nil
}

// pageLinks renders the Link header of page p of pages. Each link holds the
// page, per_page and the route's own parameters (keep), and nothing else of
// the request's query: a client's other parameters would be echoed four
// times over.
func pageLinks(r *http.Request, p readmodel.Page, pages int64, keep url.Values) string {
	link := func(n int64, rel string) string {
		q := url.Values{}
		for k, v := range keep {
			q[k] = v
		}
		q.Set("page", strconv.FormatInt(n, 10))
		q.Set("per_page", strconv.FormatInt(p.PerPage, 10))
		// The escaped path: the decoded one would turn an escaped "?" or
		// "/" in a path parameter (the seed's search terms) into syntax.
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, r.URL.EscapedPath(), q.Encode(), rel)
	}
	links := []string{link(1, "first"), link(pages, "last")}
	if p.Number > 1 {
		links = append(links, link(min(p.Number-1, pages), "prev"))
	}
	if p.Number < pages {
		links = append(links, link(p.Number+1, "next"))
	}
	return strings.Join(links, ", ")
}

// writeList answers one page with X-Total-Count and a Link header (see
// pageLinks for keep). Items are encoded and written one at a time as the
// list reads them, so a page is never held whole, neither as rows nor as
// JSON.
func writeList[T, J any](s *server, w http.ResponseWriter, r *http.Request, p readmodel.Page, keep url.Values, list readmodel.List[T], out func(T) J) error {
	return writeItems(s, w, r, pageLinks(r, p, max((list.Last+p.PerPage-1)/p.PerPage, 1), keep), list, out)
}

// writeItems answers a list's items with X-Total-Count and the given Link
// header, an item at a time (see writeList). It returns an error only when
// it has sent nothing, for the caller to answer; one after the first item
// closes the connection instead.
func writeItems[T, J any](s *server, w http.ResponseWriter, r *http.Request, links string, list readmodel.List[T], out func(T) J) error {
	// Nothing is sent before the first item, so that a failure to read it
	// still gets an answer of its own.
	started := false
	start := func() {
		started = true
		jsonHeaders(w)
		w.Header().Set("Link", links)
		w.Header().Set("X-Total-Count", strconv.FormatInt(list.Total, 10))
		w.WriteHeader(http.StatusOK)
	}
	var (
		buf      bytes.Buffer
		enc      = plainjson.NewEncoder(&buf)
		writeErr error
	)
	err := list.Each(r.Context(), func(item T) error {
		buf.Reset()
		if !started {
			start()
			buf.WriteByte('[')
		} else {
			buf.WriteByte(',')
		}
		if err := enc.Encode(out(item)); err != nil {
			return err
		}
		_, writeErr = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
		return writeErr
	})
	switch {
	case writeErr != nil || r.Context().Err() != nil:
		// The client went away: there is no one to answer.
	case err != nil && !started:
		return err
	case err != nil:
		// The status and part of the list are sent; only an interrupted
		// answer tells the client that the list is incomplete.
		s.log.Error("list failed after its first items were sent", "request_id", requestID(r.Context()), "path", redact.Tokens(r.URL.Path), "err", redacted(err))
		panic(http.ErrAbortHandler)
	case !started:
		start()
		_, _ = io.WriteString(w, "[]\n")
	default:
		_, _ = io.WriteString(w, "]\n")
	}
	return nil
}
