package api

import (
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chatsys/chat/readmodel"
)

// TestListLinks checks the Link header of a list page: links keep the path
// as it was escaped, carry page, per_page and the route's own parameters
// (a search's q) and no other, and stop at the last page that can be
// served.
func TestListLinks(t *testing.T) {
	tests := []struct {
		target      string
		total, last int64
		want        []string
	}{
		{"/applications/tok/chats?per_page=2&utm_source=x&q=y", 5, 5, []string{
			`</applications/tok/chats?page=1&per_page=2>; rel="first"`,
			`</applications/tok/chats?page=3&per_page=2>; rel="last"`,
			`</applications/tok/chats?page=2&per_page=2>; rel="next"`,
		}},
		{"/chats/tok/1/search/what%3F?per_page=1", 3, 3, []string{
			`</chats/tok/1/search/what%3F?page=1&per_page=1>; rel="first"`,
			`</chats/tok/1/search/what%3F?page=3&per_page=1>; rel="last"`,
			`</chats/tok/1/search/what%3F?page=2&per_page=1>; rel="next"`,
		}},
		{"/chats/tok/1/search/a%2Fb%20c%23d?page=2&per_page=1", 3, 3, []string{
			`</chats/tok/1/search/a%2Fb%20c%23d?page=1&per_page=1>; rel="first"`,
			`</chats/tok/1/search/a%2Fb%20c%23d?page=3&per_page=1>; rel="last"`,
			`</chats/tok/1/search/a%2Fb%20c%23d?page=1&per_page=1>; rel="prev"`,
			`</chats/tok/1/search/a%2Fb%20c%23d?page=3&per_page=1>; rel="next"`,
		}},
		{"/applications/tok/chats/1/messages/search?q=what%3F%26x%3D1&per_page=10&x=1", 1, 1, []string{
			`</applications/tok/chats/1/messages/search?page=1&per_page=10&q=what%3F%26x%3D1>; rel="first"`,
			`</applications/tok/chats/1/messages/search?page=1&per_page=10&q=what%3F%26x%3D1>; rel="last"`,
		}},
		// Search: 25,000 matches, of which the first 10,000 can be paged.
		{"/applications/tok/chats/1/messages/search?q=a&per_page=300&page=33", 25000, 10000, []string{
			`</applications/tok/chats/1/messages/search?page=1&per_page=300&q=a>; rel="first"`,
			`</applications/tok/chats/1/messages/search?page=34&per_page=300&q=a>; rel="last"`,
			`</applications/tok/chats/1/messages/search?page=32&per_page=300&q=a>; rel="prev"`,
			`</applications/tok/chats/1/messages/search?page=34&per_page=300&q=a>; rel="next"`,
		}},
		{"/applications/tok/chats/1/messages/search?q=a&per_page=300&page=34", 25000, 10000, []string{
			`</applications/tok/chats/1/messages/search?page=1&per_page=300&q=a>; rel="first"`,
			`</applications/tok/chats/1/messages/search?page=34&per_page=300&q=a>; rel="last"`,
			`</applications/tok/chats/1/messages/search?page=33&per_page=300&q=a>; rel="prev"`,
		}},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", tc.target, nil)
		p, err := page(r)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		w := httptest.NewRecorder()
		list := readmodel.List[int]{Total: tc.total, Last: tc.last}
		var keep url.Values
		if strings.Contains(tc.target, "/messages/search") {
			keep = url.Values{"q": {r.URL.Query().Get("q")}}
		}
		writeList(&server{log: slog.New(slog.DiscardHandler)}, w, r, p, keep, list, func(i int) int { return i })
		if got, want := w.Header().Get("Link"), strings.Join(tc.want, ", "); got != want {
			t.Errorf("GET %s: Link\n%s\nwant\n%s", tc.target, got, want)
		}
	}
}
