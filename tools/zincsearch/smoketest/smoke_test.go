package smoketest

// Smoke test against a running stand-in (or a real Elasticsearch 8):
//
//	ZINC_URL=$(./start.sh /tmp/zinc-bin) go test -run Smoke -v ./smoketest
//
// It is skipped when ZINC_URL is unset. It creates its index from the
// product's index definition (searchindex/index.json), and documents the
// query shape that behaves the same on ZincSearch and Elasticsearch 8.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// indexDefinition is the product's message index definition (package
// searchindex of the main module, which this module cannot import): the
// smoke test creates its index from the same file.
const indexDefinition = "../../../searchindex/index.json"

var bodyFields = []string{"body", "body.ngram", "body.prefix"}

// messageQuery is the query shape that means "every whitespace-separated
// term must match body, body.ngram or body.prefix" on both ZincSearch and
// Elasticsearch 8: one bool.should over the three fields per term, all of
// them under bool.must. (A single multi_match with "operator": "and" means
// "all terms in the same field" for most_fields/best_fields on both engines;
// ZincSearch ignores "type", so cross_fields does not help there.)
func messageQuery(token string, chat int, q string, from, size int, after []any) map[string]any {
	var must []any
	for _, term := range strings.Fields(q) {
		var should []any
		for _, f := range bodyFields {
			should = append(should, map[string]any{"match": map[string]any{f: map[string]any{"query": term, "operator": "and"}}})
		}
		must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
	}
	body := map[string]any{
		"query": map[string]any{"bool": map[string]any{
			"filter": []any{
				map[string]any{"term": map[string]any{"token": token}},
				map[string]any{"term": map[string]any{"chat_number": chat}},
			},
			"must": must,
		}},
		"sort": []any{map[string]any{"_score": "desc"}, map[string]any{"number": "asc"}},
		"from": from,
		"size": size,
	}
	if after != nil {
		body["search_after"] = after
		delete(body, "from")
	}
	return body
}

type smoke struct {
	t  *testing.T
	es *elasticsearch.Client
}

func (s smoke) do(req esapi.Request, want ...int) map[string]any {
	s.t.Helper()
	res, err := req.Do(context.Background(), s.es)
	if err != nil {
		s.t.Fatalf("%T: %v", req, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if len(want) == 0 {
		want = []int{200, 201}
	}
	ok := false
	for _, w := range want {
		ok = ok || res.StatusCode == w
	}
	if !ok {
		s.t.Fatalf("%T: status %d, want %v: %s", req, res.StatusCode, want, raw)
	}
	out := map[string]any{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return out
}

func jsonBody(v any) io.Reader {
	if s, ok := v.(string); ok {
		return strings.NewReader(s)
	}
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

type hit struct {
	ID   string
	Sort []any
}

func (s smoke) search(index string, body map[string]any) []hit {
	s.t.Helper()
	r := s.do(esapi.SearchRequest{Index: []string{index}, Body: jsonBody(body)})
	var out []hit
	for _, h := range r["hits"].(map[string]any)["hits"].([]any) {
		hm := h.(map[string]any)
		st, _ := hm["sort"].([]any)
		out = append(out, hit{hm["_id"].(string), st})
	}
	return out
}

func ids(hits []hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func TestSmoke(t *testing.T) {
	url := os.Getenv("ZINC_URL")
	if url == "" {
		t.Skip("ZINC_URL not set; start the server with ./start.sh and export ZINC_URL")
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	s := smoke{t, es}
	definition, err := os.ReadFile(indexDefinition)
	if err != nil {
		t.Fatal(err)
	}

	// The client's product check happens on the first request.
	info := s.do(esapi.InfoRequest{})
	t.Logf("server version %v", info["version"].(map[string]any)["number"])

	suffix := fmt.Sprint(time.Now().UnixNano())
	index, alias := "t-messages-v1-"+suffix, "t-messages-"+suffix
	s.do(esapi.IndicesCreateRequest{Index: index, Body: bytes.NewReader(definition)})
	defer s.do(esapi.IndicesDeleteRequest{Index: []string{index}})
	s.do(esapi.IndicesUpdateAliasesRequest{Body: jsonBody(map[string]any{"actions": []any{
		map[string]any{"add": map[string]any{"index": index, "alias": alias}},
	}})})
	got := s.do(esapi.IndicesGetAliasRequest{Name: []string{alias}})
	if _, ok := got[index]; !ok {
		t.Fatalf("GET _alias/%s = %v", alias, got)
	}

	// Bulk through the alias, then a single document; refresh=wait_for makes
	// them searchable before the response on both engines.
	docs := []struct {
		id           string
		token        string
		chat, number int
		body         string
	}{
		{"a-1-1", "tokA", 1, 1, "Hello, world!"},
		{"a-1-2", "tokA", 1, 2, "help me"},
		{"a-2-1", "tokA", 2, 1, "Hello there"},
		{"b-1-1", "tokB", 1, 1, "Hello, world! from B"},
	}
	var nd bytes.Buffer
	for _, d := range docs {
		fmt.Fprintf(&nd, `{"index":{"_index":%q,"_id":%q}}`+"\n", alias, d.id)
		b, _ := json.Marshal(map[string]any{"token": d.token, "chat_number": d.chat, "number": d.number, "body": d.body})
		nd.Write(b)
		nd.WriteByte('\n')
	}
	bulk := s.do(esapi.BulkRequest{Body: &nd, Refresh: "wait_for"})
	if bulk["errors"] == true {
		t.Fatalf("bulk errors: %v", bulk)
	}
	s.do(esapi.IndexRequest{Index: alias, DocumentID: "a-1-3", Refresh: "wait_for", Body: jsonBody(map[string]any{
		"token": "tokA", "chat_number": 1, "number": 3, "body": "something else"})})

	for _, tc := range []struct {
		q    string
		want []string // in order: _score desc, number asc
	}{
		{"hel", []string{"a-1-1", "a-1-2"}},
		{"llo", []string{"a-1-1"}},
		{"world", []string{"a-1-1"}},
		{"hello world", []string{"a-1-1"}},
		{"HELLO, WORLD!", []string{"a-1-1"}},
		{"hello xyz", []string{}},
		{"xyz", []string{}},
		{"else", []string{"a-1-3"}},
	} {
		got := ids(s.search(alias, messageQuery("tokA", 1, tc.q, 0, 20, nil)))
		want := append([]string{}, tc.want...)
		if len(want) > 1 { // scores differ between engines: compare as sets
			sort.Strings(got)
			sort.Strings(want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("q=%q: got %v, want %v", tc.q, got, want)
		}
	}
	// The term filters isolate conversations.
	if got := ids(s.search(alias, messageQuery("tokB", 1, "hello", 0, 20, nil))); !reflect.DeepEqual(got, []string{"b-1-1"}) {
		t.Errorf("tokB/1: got %v", got)
	}
	if got := ids(s.search(alias, messageQuery("tokA", 2, "hello", 0, 20, nil))); !reflect.DeepEqual(got, []string{"a-2-1"}) {
		t.Errorf("tokA/2: got %v", got)
	}

	// Paging: from/size and search_after over equal scores ordered by number.
	var more bytes.Buffer
	for n := 10; n < 17; n++ {
		fmt.Fprintf(&more, `{"index":{"_id":"p-%d"}}`+"\n"+`{"token":"tokP","chat_number":1,"number":%d,"body":"page me"}`+"\n", n, n)
	}
	s.do(esapi.BulkRequest{Index: alias, Body: &more, Refresh: "true"})
	page2 := ids(s.search(alias, messageQuery("tokP", 1, "page", 3, 3, nil)))
	if want := []string{"p-13", "p-14", "p-15"}; !reflect.DeepEqual(page2, want) {
		t.Errorf("from=3 size=3: got %v, want %v", page2, want)
	}
	var walked []string
	var after []any
	for i := 0; i < 10; i++ {
		hits := s.search(alias, messageQuery("tokP", 1, "page", 0, 3, after))
		if len(hits) == 0 {
			break
		}
		walked = append(walked, ids(hits)...)
		after = hits[len(hits)-1].Sort
	}
	if want := []string{"p-10", "p-11", "p-12", "p-13", "p-14", "p-15", "p-16"}; !reflect.DeepEqual(walked, want) {
		t.Errorf("search_after walk: got %v, want %v", walked, want)
	}

	// Realtime GET, partial update, delete, count.
	doc := s.do(esapi.GetRequest{Index: alias, DocumentID: "a-1-2"})
	if doc["found"] != true || doc["_source"].(map[string]any)["body"] != "help me" {
		t.Errorf("GET a-1-2 = %v", doc)
	}
	s.do(esapi.UpdateRequest{Index: alias, DocumentID: "a-1-2", Refresh: "wait_for",
		Body: jsonBody(`{"doc":{"body":"help me please"}}`)})
	doc = s.do(esapi.GetRequest{Index: alias, DocumentID: "a-1-2"})
	if src := doc["_source"].(map[string]any); src["body"] != "help me please" || src["token"] != "tokA" {
		t.Errorf("after update: %v", src)
	}
	s.do(esapi.DeleteRequest{Index: alias, DocumentID: "a-1-2", Refresh: "wait_for"})
	s.do(esapi.GetRequest{Index: alias, DocumentID: "a-1-2"}, 404)
	cnt := s.do(esapi.CountRequest{Index: []string{alias}})
	if cnt["count"] != float64(len(docs)+1-1+7) {
		t.Errorf("count = %v", cnt["count"])
	}
	s.do(esapi.IndicesGetRequest{Index: []string{"t-missing-" + suffix}}, 404)

	// The typed client decodes the responses too.
	tc, err := elasticsearch.NewTypedClient(elasticsearch.Config{Addresses: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := tc.Indices.Exists(alias).Do(ctx); err != nil || !ok {
		t.Errorf("typed Indices.Exists(%s) = %v, %v", alias, ok, err)
	}
	res, err := tc.Search().Index(alias).Raw(jsonBody(messageQuery("tokA", 1, "hello world", 0, 10, nil))).Do(ctx)
	if err != nil {
		t.Fatalf("typed search: %v", err)
	}
	if res.Hits.Total == nil || res.Hits.Total.Value != 1 || len(res.Hits.Hits) != 1 || *res.Hits.Hits[0].Id_ != "a-1-1" {
		t.Errorf("typed search: total %+v, hits %d", res.Hits.Total, len(res.Hits.Hits))
	}
}
