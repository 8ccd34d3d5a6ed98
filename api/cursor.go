package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/readmodel"
)

// A cursor is a position among a chat's changes (creates, edits, deletes),
// or a chat's number in an application's chats, as decimal digits; "0" is
// the start of the list. Clients treat it as opaque.
func parseCursor(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || len(v) > 19 || strconv.FormatInt(n, 10) != v {
		return 0, apperr.InvalidCursor("%s must be a cursor: a Last-Event-ID or a cursor from a Link header", name)
	}
	return n, nil
}

func formatCursor(pos int64) string { return strconv.FormatInt(pos, 10) }

// MaxWait bounds a long poll's wait.
const MaxWait = 60 * time.Second

// cursorQuery is a cursor read of a list: after or before a cursor,
// per_page items, waiting up to wait for the first after the cursor.
type cursorQuery struct {
	span readmodel.Span
	wait time.Duration
}

// cursorParams reads after, before, per_page and wait; ok is false when
// the request asks for a page by number instead.
func cursorParams(r *http.Request) (cursorQuery, bool, error) {
	q := r.URL.Query()
	c := cursorQuery{span: readmodel.Span{Limit: defaultPerPage}}
	after, before, wait := q.Get("after"), q.Get("before"), q.Get("wait")
	if !q.Has("after") && !q.Has("before") {
		if wait != "" {
			return c, false, apperr.InvalidCursor("wait takes an after cursor")
		}
		return c, false, nil
	}
	var err error
	switch {
	case q.Has("page"):
		return c, true, apperr.InvalidCursor("page and a cursor (after, before) select a list differently; give one")
	case q.Has("after") && q.Has("before"):
		return c, true, apperr.InvalidCursor("give after or before, not both")
	case q.Has("after"):
		c.span.After, err = parseCursor("after", after)
	default:
		c.span.Before, err = parseCursor("before", before)
		if err == nil && c.span.Before == 0 {
			err = apperr.InvalidCursor("before must be a cursor after the start")
		}
	}
	if err != nil {
		return c, true, err
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > maxPerPage {
			return c, true, apperr.Validation("per_page must be a whole number from 1 to %d", maxPerPage)
		}
		c.span.Limit = n
	}
	if wait != "" {
		if c.wait, err = parseWait(wait); err != nil {
			return c, true, err
		}
		if q.Has("before") {
			return c, true, apperr.InvalidCursor("wait takes an after cursor")
		}
	}
	return c, true, nil
}

// parseWait reads a wait as a duration ("25s") or whole seconds ("25").
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d < 0 || d > MaxWait {
		return 0, apperr.InvalidCursor("wait must be a duration from 0s to %s", MaxWait)
	}
	return d, nil
}

// cursorLinks renders the Link header of a cursor read of span c that
// found the items from..to: next holds the cursor to read after (the last
// item's, or the same cursor when the read found nothing, for the next
// poll), prev the cursor to read before.
func cursorLinks(r *http.Request, c readmodel.Span, from, to int64) string {
	link := func(param string, pos int64, rel string) string {
		q := url.Values{}
		q.Set(param, formatCursor(pos))
		q.Set("per_page", strconv.FormatInt(c.Limit, 10))
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, r.URL.EscapedPath(), q.Encode(), rel)
	}
	var links []string
	switch {
	case to > 0:
		links = append(links, link("after", to, "next"), link("before", from, "prev"))
	case c.Before > 0:
		links = append(links, link("after", c.Before-1, "next"))
	default:
		links = append(links, link("after", c.After, "next"))
	}
	return strings.Join(links, ", ")
}
