package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// These tests hold the API to HTTP's own rules, over a real connection (a
// loopback server with the in-memory commands and read side): HEAD, Allow.

// routedPath fills a route's parameters so that its GET finds the test
// API's application, chat 1 and message 1.
func routedPath(route string) string {
	path := strings.NewReplacer("{token}", apiToken, "{chat}", "1", "{message}", "1", "{param}", "hel").Replace(route)
	switch {
	case strings.HasSuffix(path, "/messages/search"):
		path += "?q=hel"
	case path == "/chats/1":
		path += "?app_token=" + apiToken
	}
	return path
}

// send makes one request to srv and returns the answer with its body read.
func send(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "same-for-both")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestHeadWhereverGet: every route served by GET answers HEAD with the
// status and headers GET answers, and no body; so does a path GET is
// refused on, to the Content-Length of the refusal.
func TestHeadWhereverGet(t *testing.T) {
	t.Parallel()
	a := newTestAPI(true)
	srv := httptest.NewServer(a.h)
	defer srv.Close()
	want := map[string]int{ // by path, GET's status
		"/applications": http.StatusMethodNotAllowed,
		"/messages/1":   http.StatusMethodNotAllowed,
		"/no/such/path": http.StatusNotFound,
	}
	for r := range oaWalk(t, a.h) {
		// A stream's GET never ends: its HEAD is the stream's headers alone.
		if r.method == http.MethodGet && !strings.HasSuffix(r.path, "/stream") {
			want[routedPath(r.path)] = http.StatusOK
		}
	}
	for path, status := range want {
		t.Run(path, func(t *testing.T) {
			get, _ := send(t, srv, http.MethodGet, path)
			head, body := send(t, srv, http.MethodHead, path)
			if head.StatusCode != get.StatusCode || get.StatusCode != status {
				t.Errorf("HEAD %d, GET %d; want both %d", head.StatusCode, get.StatusCode, status)
			}
			if body != "" {
				t.Errorf("HEAD answered a body: %q", body)
			}
			for name := range get.Header {
				if name == "Date" {
					continue
				}
				if got, want := head.Header.Values(name), get.Header.Values(name); !slices.Equal(got, want) {
					t.Errorf("HEAD %s: %q; GET: %q", name, got, want)
				}
			}
		})
	}
}

// TestMethodNotAllowedListsWhatIsServed: a method a path does not serve
// answers 405 with an Allow header that lists the methods the path serves
// (HEAD wherever GET), and no other.
func TestMethodNotAllowedListsWhatIsServed(t *testing.T) {
	t.Parallel()
	a := newTestAPI(true)
	srv := httptest.NewServer(a.h)
	defer srv.Close()
	served := map[string][]string{} // by route
	for r := range oaWalk(t, a.h) {
		served[r.path] = append(served[r.path], r.method)
		if r.method == http.MethodGet {
			served[r.path] = append(served[r.path], http.MethodHead)
		}
	}
	order := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	// Methods no route serves, some unknown to the router.
	others := []string{http.MethodOptions, http.MethodTrace, "PROPFIND", "FOO"}
	for route, methods := range served {
		var want []string
		for _, m := range order {
			if slices.Contains(methods, m) {
				want = append(want, m)
			}
		}
		path := routedPath(route)
		for _, m := range append(order, others...) {
			if slices.Contains(methods, m) {
				continue
			}
			resp, body := send(t, srv, m, path)
			if resp.StatusCode != http.StatusMethodNotAllowed || m != http.MethodHead && !strings.Contains(body, "method_not_allowed") {
				t.Errorf("%s %s: %d %s; want 405 method_not_allowed", m, path, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Allow"); got != strings.Join(want, ", ") {
				t.Errorf("%s %s: Allow %q; want %q", m, path, got, strings.Join(want, ", "))
			}
		}
	}
	// A path no route takes is not found, whatever the method: no 405
	// with an Allow that lists nothing.
	for _, m := range append(order, others...) {
		resp, body := send(t, srv, m, "/no/such/path")
		if resp.StatusCode != http.StatusNotFound || m != http.MethodHead && !strings.Contains(body, "not_found") || resp.Header["Allow"] != nil {
			t.Errorf("%s /no/such/path: %d, Allow %q, %s; want 404 not_found", m, resp.StatusCode, resp.Header["Allow"], body)
		}
	}
}

// TestLinksAndTargetsAreBounded: a list's Link header repeats page,
// per_page and the route's own parameters (a search's q) and none of the
// client's others, and a path and query over MaxTargetBytes is refused
// with 414 whatever the route, while the longest search the API takes
// still fits.
func TestLinksAndTargetsAreBounded(t *testing.T) {
	t.Parallel()
	junk := "&utm_campaign=" + strings.Repeat("j", 1000)
	longest := strings.Repeat("%F0%9F%98%80", 1000) // 1,000 characters of 4 bytes
	tests := []struct {
		what, method, path string
		status             int
		link               string // what every link of a 200 holds after the path
	}{
		{"chats", "GET", "/applications/" + apiToken + "/chats?per_page=1" + junk, 200, "?page=1&per_page=1>"},
		{"messages", "GET", "/applications/" + apiToken + "/chats/1/messages?per_page=1" + junk, 200, "?page=1&per_page=1>"},
		{"the seed's messages", "GET", "/chats/" + apiToken + "/1/messages?per_page=1" + junk, 200, "?page=1&per_page=1>"},
		{"a search", "GET", "/applications/" + apiToken + "/chats/1/messages/search?q=hel&per_page=3" + junk, 200, "?page=1&per_page=3&q=hel>"},
		{"the seed's search", "GET", "/chats/" + apiToken + "/1/search/hel?per_page=3" + junk, 200, "/search/hel?page=1&per_page=3>"},
		{"the longest search", "GET", "/applications/" + apiToken + "/chats/1/messages/search?per_page=3&q=" + longest, 200, "?page=1&per_page=3&q=" + longest + ">"},
		{"a query of 108 KB", "GET", "/applications/" + apiToken + "/chats?x=" + strings.Repeat("x", 108<<10), 414, ""},
		{"a query just over the bound", "GET", "/applications/" + apiToken + "?x=" + strings.Repeat("x", MaxTargetBytes-len("/applications/"+apiToken)), 414, ""},
		{"a command's", "POST", "/applications?x=" + strings.Repeat("x", MaxTargetBytes), 414, ""},
		{"a path no route takes", "GET", "/" + strings.Repeat("x", MaxTargetBytes), 414, ""},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(true)
			w := a.call(tc.method, tc.path, "")
			if w.Code != tc.status {
				t.Fatalf("%d %s; want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.status)
			}
			if tc.status == 414 {
				if errorCode(w) != "uri_too_long" {
					t.Errorf("code %q, want uri_too_long", errorCode(w))
				}
				if a.search.asked != nil || a.reads.reads() != 0 || len(a.cmd.received()) != 0 {
					t.Error("a refused request reached the read side, the search or the commands")
				}
				return
			}
			link := w.Header().Get("Link")
			if !strings.Contains(link, tc.link) || strings.Contains(link, "utm_campaign") {
				t.Errorf("Link %.300q; want links to %q and no other parameter", link, tc.link)
			}
		})
	}
}

// TestNumbersHaveOnePath: a chat or message number in a path is written
// one way; a sign, a leading zero or anything else names no chat or
// message (404), on every route that takes one, and nothing runs.
func TestNumbersHaveOnePath(t *testing.T) {
	t.Parallel()
	app := "/applications/" + apiToken
	routes := []struct{ method, path, body string }{ // N is the number tried
		{"GET", app + "/chats/N", ""},
		{"PATCH", app + "/chats/N", `{"name":"x"}`},
		{"GET", app + "/chats/N/messages", ""},
		{"POST", app + "/chats/N/messages", `{"body":"x"}`},
		{"GET", app + "/chats/N/messages/search?q=hel", ""},
		{"GET", app + "/chats/1/messages/N", ""},
		{"PATCH", app + "/chats/1/messages/N", `{"body":"x"}`},
		{"GET", "/chats/N?app_token=" + apiToken, ""},
		{"PATCH", "/chats/N", `{"name":"x","app_token":"` + apiToken + `"}`},
		{"GET", "/chats/" + apiToken + "/N/messages", ""},
		{"GET", "/chats/" + apiToken + "/N/search/hel", ""},
		{"GET", "/messages/" + apiToken + "/N/1", ""},
		{"GET", "/messages/" + apiToken + "/1/N", ""},
		{"PATCH", "/messages/N", `{"body":"x","chat_number":1,"app_token":"` + apiToken + `"}`},
	}
	for _, n := range []string{"01", "+1", "%2B1", "001", "1.0", "0x1", "1e0", "%201", "1%20", "%EF%BC%91"} {
		for _, r := range routes {
			a := newTestAPI(true)
			path := strings.Replace(r.path, "N", n, 1)
			if w := a.call(r.method, path, r.body); w.Code != http.StatusNotFound || errorCode(w) != "not_found" {
				t.Errorf("%s %s: %d %s; want 404 not_found", r.method, path, w.Code, strings.TrimSpace(w.Body.String()))
			}
			if len(a.cmd.received()) != 0 || a.reads.reads() != 0 || a.search.asked != nil {
				t.Errorf("%s %s ran a command, a read or a search", r.method, path)
			}
		}
	}
	// Written the one way, the same routes find chat 1 and message 1.
	for _, r := range routes {
		a := newTestAPI(true)
		path := strings.Replace(r.path, "N", "1", 1)
		if w := a.call(r.method, path, r.body); w.Code != http.StatusOK && w.Code != http.StatusCreated {
			t.Errorf("%s %s: %d %s; want it served", r.method, path, w.Code, strings.TrimSpace(w.Body.String()))
		}
	}
}
