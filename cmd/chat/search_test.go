package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
)

// searchNumbers runs a search and returns the numbers of the hits.
func searchNumbers(t *testing.T, s *system, path string) ([]int64, response) {
	t.Helper()
	r := s.call(t, "GET", path, nil)
	if r.Status != 200 {
		return nil, r
	}
	var hits []struct{ Number int64 }
	r.json(t, &hits)
	out := make([]int64, len(hits))
	for i, h := range hits {
		out[i] = h.Number
	}
	return out, r
}

func sorted(n []int64) string {
	c := append([]int64(nil), n...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return fmt.Sprint(c)
}

// eventuallyFinds polls a search until it returns exactly want (as a set).
// Its bound is generous: the search stand-in, on the cores every test
// shares, has been seen to answer nothing in time for most of a minute
// while the scale-out tests start their clusters.
func eventuallyFinds(t *testing.T, s *system, path string, want ...int64) {
	t.Helper()
	var got []int64
	var r response
	deadline := time.Now().Add(testenv.SearchWait)
	for time.Now().Before(deadline) {
		got, r = searchNumbers(t, s, path)
		if r.Status == 200 && sorted(got) == sorted(want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: %d %v, want %v (%s)", path, r.Status, got, want, r.Body)
}

func TestSearch(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "search"}).object(t)["token"].(string)
	other := s.must(t, 201, "POST", "/applications", map[string]any{"name": "other"}).object(t)["token"].(string)
	for _, tok := range []string{token, token, other} {
		s.must(t, 201, "POST", "/applications/"+tok+"/chats", nil)
	}
	bodies := []string{"Hello, world!", "help me", "Crème brûlée recipe", "something else", "HELLO again"}
	for _, b := range bodies {
		s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": b})
	}
	s.must(t, 201, "POST", "/applications/"+token+"/chats/2/messages", map[string]any{"body": "hello from chat two"})
	s.must(t, 201, "POST", "/applications/"+other+"/chats/1/messages", map[string]any{"body": "hello from another application"})

	path := func(q string) string {
		return "/applications/" + token + "/chats/1/messages/search?q=" + url.QueryEscape(q)
	}
	// The index has caught up with chat 1 once its last message is found
	// (the engine indexes in the background, in no promised order).
	for n, word := range []string{"world", "help", "recipe", "something", "again"} {
		eventuallyFinds(t, s, path(word), int64(n+1))
	}
	tests := []struct {
		q    string
		want []int64
	}{
		{"hel", []int64{1, 2, 5}},      // prefix
		{"llo", []int64{1, 5}},         // infix of 3
		{"world", []int64{1}},          // whole word
		{"hello world", []int64{1}},    // every term must match
		{"HeLLo", []int64{1, 5}},       // case
		{"creme", []int64{3}},          // accents folded in the index
		{"brûlée", []int64{3}},         // and in the query
		{"RÛL", []int64{3}},            // infix, accent and case at once
		{"ld", nil},                    // an infix of 2 is not enough
		{"xyz", nil},                   // nothing
		{"hello xyz", nil},             // one term matching is not enough
		{"wor hel", []int64{1}},        // prefixes of two words
		{"recipes", nil},               // longer than the word
		{"-world OR help*", nil},       // no query syntax reaches the engine
		{`"hello" AND (me)`, nil},      // likewise
		{strings.Repeat("a", 50), nil}, // longer than any gram
		{"hello !!! ,", []int64{1, 5}}, // terms of punctuation alone are left out
	}
	for _, tc := range tests {
		got, r := searchNumbers(t, s, path(tc.q))
		if r.Status != 200 || sorted(got) != sorted(tc.want) {
			t.Errorf("q=%q: %d %v, want %v", tc.q, r.Status, got, tc.want)
		}
	}
	// Isolation between chats and applications, and the seed's route.
	eventuallyFinds(t, s, "/applications/"+token+"/chats/2/messages/search?q=hello", 1)
	eventuallyFinds(t, s, "/applications/"+other+"/chats/1/messages/search?q=hello", 1)
	if got, r := searchNumbers(t, s, "/applications/"+other+"/chats/1/messages/search?q=world"); r.Status != 200 || len(got) != 0 {
		t.Errorf("another application's search found %v", got)
	}
	if got, r := searchNumbers(t, s, "/chats/"+token+"/1/search/"+url.PathEscape("hello world")); r.Status != 200 || sorted(got) != "[1]" {
		t.Errorf("seed search route: %d %v %s", r.Status, got, r.Body)
	}
	// Hits read like GET.
	r := s.must(t, 200, "GET", path("brulee"), nil)
	var hits []map[string]any
	r.json(t, &hits)
	if len(hits) != 1 || hits[0]["body"] != "Crème brûlée recipe" || num(hits[0]["chat_number"]) != 1 || hits[0]["created_at"] == nil {
		t.Errorf("hit %v", hits)
	}
	// Pagination.
	r = s.must(t, 200, "GET", path("hel")+"&per_page=2", nil)
	r.json(t, &hits)
	if len(hits) != 2 || r.Header.Get("X-Total-Count") != "3" || !strings.Contains(r.Header.Get("Link"), `rel="next"`) {
		t.Errorf("page 1 of 2: %d hits, X-Total-Count %q, Link %q", len(hits), r.Header.Get("X-Total-Count"), r.Header.Get("Link"))
	}
	page2, _ := searchNumbers(t, s, path("hel")+"&per_page=2&page=2")
	if len(page2) != 1 {
		t.Errorf("page 2: %v", page2)
	}
	// An edit is reflected.
	s.must(t, 200, "PATCH", "/applications/"+token+"/chats/1/messages/4", map[string]any{"body": "hello, edited"})
	eventuallyFinds(t, s, path("edited"), 4)
	eventuallyFinds(t, s, path("something"))
	// Errors.
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{path(""), 422, "validation_failed"},
		{path("   "), 422, "validation_failed"},
		{path(strings.Repeat("a", 1001)), 422, "validation_failed"},
		// Nothing left to search for once folded: without a term the
		// query would match every message.
		{path("\u0301"), 422, "validation_failed"},
		{path("!!! ?, ..."), 422, "validation_failed"},
		{"/chats/" + token + "/1/search/%CC%81", 422, "validation_failed"},
		{"/chats/" + token + "/1/search/%3F%21", 422, "validation_failed"},
		{path("x") + "&per_page=1000&page=11", 422, "validation_failed"},
		{"/applications/" + token + "/chats/9/messages/search?q=hello", 404, "not_found"},
		{"/applications/" + strings.Repeat("a", 26) + "/chats/1/messages/search?q=hello", 404, "not_found"},
	} {
		if r := s.call(t, "GET", tc.path, nil); r.Status != tc.status || r.errorCode(t) != tc.code {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, r.Status, r.Body, tc.status, tc.code)
		}
	}
}

// TestSearchOutageAndRestart takes the search engine away from the API and
// the worker: search answers 503 while everything else works, and the
// projector, restarted mid-stream and reconnected, indexes every message.
func TestSearchOutageAndRestart(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	esURL, _ := url.Parse(cfg.ElasticsearchURL)
	proxy := testenv.NewProxy(t, esURL.Host)
	esURL.Host = proxy.Addr()
	viaProxy := cfg
	viaProxy.ElasticsearchURL = esURL.String()
	api := start(t, viaProxy, true, false)
	worker := start(t, viaProxy, false, true)
	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "outage"}).object(t)["token"].(string)
	api.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	messages := "/applications/" + token + "/chats/1/messages"
	search := messages + "/search?q=note&per_page=1000"
	api.must(t, 201, "POST", messages, map[string]any{"body": "note 1"})
	eventuallyFinds(t, api, search, 1)

	proxy.Down()
	if r := api.call(t, "GET", search, nil); r.Status != 503 || r.errorCode(t) != "unavailable" || r.Header.Get("Retry-After") == "" {
		t.Errorf("search with the engine down: %d %s", r.Status, r.Body)
	}
	want := []int64{1}
	for i := 2; i <= 40; i++ {
		api.must(t, 201, "POST", messages, map[string]any{"body": fmt.Sprint("note ", i)})
		want = append(want, int64(i))
		if i == 20 {
			worker.stop() // the projector goes away mid-stream
			worker = start(t, viaProxy, false, true)
		}
	}
	api.eventually(t, messages+"/40", nil)
	if r := api.call(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Errorf("/readyz with only search down: %d %s", r.Status, r.Body)
	}
	proxy.Up()
	eventuallyFinds(t, api, search, want...)
}

// TestDoctorSearch runs `chat doctor search` against the engine the tests use.
func TestDoctorSearch(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	var out, errOut strings.Builder
	env := map[string]string{"CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL, "CHAT_NAMESPACE": cfg.Namespace}
	code := run(t.Context(), []string{"doctor", "search"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "all search checks passed") || strings.Contains(out.String(), "FAIL") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Count(out.String(), "ok  ") != 13 {
		t.Errorf("not every case was checked:\n%s", out.String())
	}
}

// TestSearchLinks follows the Link header of searches whose terms hold
// characters that mean something in a URL: each link repeats the same
// search, and no link points past the pages that can be served.
func TestSearchLinks(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "links"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	for _, b := range []string{"what? one", "so what? two", "how/ever three", "nothing here"} {
		s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": b})
	}
	nested := "/applications/" + token + "/chats/1/messages/search?q="
	eventuallyFinds(t, s, nested+"nothing", 4)
	eventuallyFinds(t, s, nested+"three", 3)
	linkTo := func(r response, rel string) string {
		for _, l := range strings.Split(r.Header.Get("Link"), ", ") {
			if target, found := strings.CutSuffix(l, `>; rel="`+rel+`"`); found {
				return strings.TrimPrefix(strings.TrimPrefix(target, "<"), s.URL)
			}
		}
		return ""
	}
	for _, tc := range []struct {
		first string
		want  []int64
	}{
		{"/chats/" + token + "/1/search/what%3F?per_page=1", []int64{1, 2}},
		{"/chats/" + token + "/1/search/how%2Fever?per_page=1", []int64{3}},
		{nested + url.QueryEscape("what?") + "&per_page=1", []int64{1, 2}},
		{"/chats/" + token + "/1/messages?per_page=1", []int64{1, 2, 3, 4}},
		{"/applications/" + token + "/chats/1/messages?per_page=3", []int64{1, 2, 3, 4}},
	} {
		var got []int64
		path := tc.first
		for pages := 0; path != "" && pages < 10; pages++ {
			r := s.must(t, 200, "GET", path, nil)
			var hits []struct{ Number int64 }
			r.json(t, &hits)
			for _, h := range hits {
				got = append(got, h.Number)
			}
			if r.Header.Get("X-Total-Count") != fmt.Sprint(len(tc.want)) {
				t.Errorf("GET %s: X-Total-Count %q, want %d", path, r.Header.Get("X-Total-Count"), len(tc.want))
			}
			path = linkTo(r, "next")
		}
		if sorted(got) != sorted(tc.want) || len(got) != len(tc.want) {
			t.Errorf("following next from %s: %v, want %v", tc.first, got, tc.want)
		}
	}
	// The page that straddles the end of the 10,000-result window is
	// served; one that starts beyond it is refused.
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"&per_page=300&page=34", 200},
		{"&per_page=300&page=35", 422},
		{"&per_page=1&page=10000", 200},
		{"&per_page=1&page=10001", 422},
	} {
		if r := s.call(t, "GET", nested+"what"+tc.query, nil); r.Status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", nested+"what"+tc.query, r.Status, r.Body, tc.status)
		}
	}
}

// TestSearchFolding checks that letters match their ASCII spelling as
// Elasticsearch's asciifolding would have them, in the text and in the query.
func TestSearchFolding(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "folding"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	bodies := []string{
		"Meet me in Łódź",              // 1
		"Søren's smørrebrød",           // 2
		"Die Straße ist lang",          // 3
		"Encyclopædia and œuvre",       // 4
		"Đakovo and Þórshöfn",          // 5
		"plain ascii: lodz strasse oe", // 6
	}
	for _, b := range bodies {
		s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": b})
	}
	path := func(q string) string {
		return "/applications/" + token + "/chats/1/messages/search?q=" + url.QueryEscape(q)
	}
	eventuallyFinds(t, s, path("plain"), 6)
	eventuallyFinds(t, s, path("meet"), 1)
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{"lodz", []int64{1, 6}},
		{"ŁÓDŹ", []int64{1, 6}},
		{"łod", []int64{1, 6}},
		{"soren", []int64{2}},
		{"smorrebrod", []int64{2}},
		{"ørre", []int64{2}},
		{"strasse", []int64{3, 6}},
		{"straße", []int64{3, 6}},
		{"encyclopaedia", []int64{4}},
		{"oeuvre", []int64{4}},
		{"dakovo", []int64{5}},
		{"thorshofn", []int64{5}},
		{"þórs", []int64{5}},
		{"ß", nil}, // "ss": an infix of 2 characters is not enough
		{"stras", []int64{3, 6}},
	} {
		got, r := searchNumbers(t, s, path(tc.q))
		if r.Status != 200 || sorted(got) != sorted(tc.want) {
			t.Errorf("q=%q: %d %v, want %v", tc.q, r.Status, got, tc.want)
		}
	}
}

// TestSearchLongWords checks words longer than the longest gram (20
// characters): a query term that long matches the words that share its
// first 20 characters, and a whole word matches itself.
func TestSearchLongWords(t *testing.T) {
	t.Parallel()
	s := start(t, testenv.Config(t), true, true)
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "long words"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	for _, b := range []string{
		"supercalifragilisticexpialidocious",                      // 1
		"Pneumonoultramicroscopicsilicovolcanoconiosis is a word", // 2
		"the Donaudampfschifffahrtsgesellschaftskapitän's hat",    // 3
		"short words only", // 4
	} {
		s.must(t, 201, "POST", "/applications/"+token+"/chats/1/messages", map[string]any{"body": b})
	}
	path := func(q string) string {
		return "/applications/" + token + "/chats/1/messages/search?q=" + url.QueryEscape(q)
	}
	eventuallyFinds(t, s, path("short"), 4)
	eventuallyFinds(t, s, path("hat"), 3)
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{"supercalifragilistic", []int64{1}},                // 20: a prefix gram
		{"supercalifragilistice", []int64{1}},               // 21: cut to 20 for the grams
		{"SUPERCALIFRAGILISTICEXPIALI", []int64{1}},         // a longer prefix
		{"supercalifragilisticexpialidocious", []int64{1}},  // the whole word
		{"califragilisticexpialidoc", []int64{1}},           // a long infix
		{"pneumonoultramicroscopicsilico word", []int64{2}}, // with another term
		{"ultramicroscopicsilicovolcano", []int64{2}},       // a long infix
		{"donaudampfschifffahrtsgesellschaft", []int64{3}},  // folded, in a joined word
		{"donaudampfschifffahrtsgesellschaftskapitan", []int64{3}},
		{"supercalifragilisticexpialidociousness", []int64{1}}, // the limit: only 20 characters count for the grams
		{"supercalifragilisticXYZ short", nil},                 // every term must still match
		{"xsupercalifragilisticexpialidocious", nil},           // its first 20 characters are not in the word
	} {
		got, r := searchNumbers(t, s, path(tc.q))
		if r.Status != 200 || sorted(got) != sorted(tc.want) {
			t.Errorf("q=%q: %d %v, want %v", tc.q, r.Status, got, tc.want)
		}
	}
}

// TestSearchCountsWhatItCanReturn stores an edit of a number whose create
// never landed and an edit stored before its create: X-Total-Count counts
// exactly the messages a search can return, the late create does not bring
// back its older body, and verify agrees with the index.
func TestSearchCountsWhatItCanReturn(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	s := start(t, cfg, true, true)
	pub := publisher(t, cfg)
	db := testenv.DB(t, cfg)
	ctx := t.Context()
	token := s.must(t, 201, "POST", "/applications", map[string]any{"name": "counted"}).object(t)["token"].(string)
	s.must(t, 201, "POST", "/applications/"+token+"/chats", nil)
	messages := "/applications/" + token + "/chats/1/messages"
	s.must(t, 201, "POST", messages, map[string]any{"body": "needle one"})
	s.must(t, 201, "POST", messages, map[string]any{"body": "needle two"})

	publish := func(ev events.Event, version int64) {
		t.Helper()
		if err := pub.Publish(ctx, record(t, ev, version)); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(number int64, version int64) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, fmt.Sprint("message ", number, " version ", version, " stored"), func() bool {
			var n int
			err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+catalog.New(cfg.Namespace).Events()+" WHERE stream_id = ? AND stream_version = ?",
				events.MessageStream(token, 1, number), version).Scan(&n)
			return err == nil && n == 1
		})
	}
	publish(events.MessageEdited{Token: token, ChatNumber: 1, Number: 9, Body: "needle orphan"}, 2)
	publish(events.MessageEdited{Token: token, ChatNumber: 1, Number: 5, Body: "needle edited early"}, 2)
	stored(5, 2)
	publish(events.MessageCreated{Token: token, ChatNumber: 1, Number: 5, Body: "first draft"}, 1)
	stored(5, 1)
	s.must(t, 201, "POST", messages, map[string]any{"body": "needle three"})
	eventuallyFinds(t, s, messages+"/search?q=three", 3)

	eventuallyFinds(t, s, messages+"/search?q=needle", 1, 2, 3, 5)
	r := s.must(t, 200, "GET", messages+"/search?q=needle&per_page=2", nil)
	if got := r.Header.Get("X-Total-Count"); got != "4" {
		t.Errorf("X-Total-Count %q, want 4 (the orphan edit must not count)", got)
	}
	for _, q := range []string{"orphan", "draft"} {
		if got, r := searchNumbers(t, s, messages+"/search?q="+q); r.Status != 200 || len(got) != 0 || r.Header.Get("X-Total-Count") != "0" {
			t.Errorf("q=%s: %d %v, X-Total-Count %q; want nothing", q, r.Status, got, r.Header.Get("X-Total-Count"))
		}
	}
	eventuallyFinds(t, s, messages+"/search?q=early", 5)

	env := map[string]string{"CHAT_MYSQL_DSN": cfg.MySQLDSN, "CHAT_ELASTICSEARCH_URL": cfg.ElasticsearchURL, "CHAT_NAMESPACE": cfg.Namespace}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out, errOut strings.Builder
	if code := run(ctx, []string{"verify"}, lookup, &out, &errOut); code != 0 {
		t.Errorf("verify: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
