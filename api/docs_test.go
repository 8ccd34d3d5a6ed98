package api

import (
	"net/http"
	"os"
	"regexp"
	"sort"
	"testing"
)

// readmeRoute finds a route in docs/api.md: a row of the API table
// (| DELETE | `/applications/…` |) or a route written inline
// (`DELETE /messages/{number}?…`).
var readmeRoute = regexp.MustCompile("(?m)(?:^\\| ([A-Z]+) \\| `|`([A-Z]+) )(/[^`?\\s]*)")

// readmeParam is a path parameter, whatever the page names it.
var readmeParam = regexp.MustCompile(`\{[^}]*\}`)

// TestDocsListEveryRoute keeps the routes of docs/api.md true to the
// router: each route a client can call (HEAD aside, which GET's routes
// answer alike) is listed, by its method and path, and the page lists no
// route that is not routed.
func TestDocsListEveryRoute(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(method, path string) string {
		return method + " " + readmeParam.ReplaceAllString(oaNormalise(path), "{}")
	}
	listed := map[string]bool{}
	for _, m := range readmeRoute.FindAllStringSubmatch(string(b), -1) {
		listed[norm(m[1]+m[2], m[3])] = true
	}
	routed := map[string]bool{}
	for r := range oaWalk(t, oaRouter(t)) {
		if r.method != http.MethodHead {
			routed[norm(r.method, r.path)] = true
		}
	}
	var missing, extra []string
	for r := range routed {
		if !listed[r] {
			missing = append(missing, r)
		}
	}
	for r := range listed {
		if !routed[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, r := range missing {
		t.Errorf("docs/api.md lists no route %s", r)
	}
	for _, r := range extra {
		t.Errorf("docs/api.md lists %s, which is not routed", r)
	}
}
