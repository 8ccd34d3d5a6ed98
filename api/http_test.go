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
// status and headers GET answers, and no body.
func TestHeadWhereverGet(t *testing.T) {
	t.Parallel()
	a := newTestAPI(true)
	srv := httptest.NewServer(a.h)
	defer srv.Close()
	for r := range oaWalk(t, a.h) {
		if r.method != http.MethodGet {
			continue
		}
		path := routedPath(r.path)
		t.Run(path, func(t *testing.T) {
			get, _ := send(t, srv, http.MethodGet, path)
			head, body := send(t, srv, http.MethodHead, path)
			if head.StatusCode != get.StatusCode || get.StatusCode != http.StatusOK {
				t.Errorf("HEAD %d, GET %d; want both 200", head.StatusCode, get.StatusCode)
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
	for route, methods := range served {
		var want []string
		for _, m := range order {
			if slices.Contains(methods, m) {
				want = append(want, m)
			}
		}
		path := routedPath(route)
		for _, m := range order {
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
}
