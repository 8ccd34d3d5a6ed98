package searchindex_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/searchindex"
)

// TestIndexLifecycle runs the typed operations against the engine the tests
// use: create and ensure, bulk, search and count, then a new version
// swapped in behind the alias.
func TestIndexLifecycle(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := es.Version(ctx); err != nil || v == "" {
		t.Fatalf("version %q, %v", v, err)
	}
	ix := searchindex.NewIndex(es, cfg.Namespace)
	if v, err := ix.Current(ctx); err != nil || v != 0 {
		t.Fatalf("before Ensure: version %d, %v", v, err)
	}
	for range 2 { // the second finds the alias
		if err := ix.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := ix.Targets(ctx); err != nil || !slices.Equal(names, []string{ix.VersionName(searchindex.Version)}) {
		t.Fatalf("the alias points at %v, %v", names, err)
	}
	fields, err := es.Mapping(ctx, ix.VersionName(searchindex.Version))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["body"].Fields["ngram"]; !ok {
		t.Errorf("the mapping has no body.ngram: %+v", fields)
	}
	if problems, err := es.MappingProblems(ctx, ix.VersionName(searchindex.Version)); err != nil || len(problems) > 0 {
		t.Errorf("the index as created: problems %q, %v; want none", problems, err)
	}

	const token = "abcdefghijklmnopqrstuvwxyz"
	index := func(target string, bodies ...string) {
		t.Helper()
		var b searchindex.Bulk
		for i, body := range bodies {
			n := int64(i + 1)
			if err := b.Index(target, searchindex.DocumentID(token, 1, n), 1, searchindex.Document{Token: token, ChatNumber: 1, Number: n, Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		failed, err := es.Send(ctx, &b, true)
		if err != nil || len(failed) > 0 {
			t.Fatalf("bulk: %v, %v", failed, err)
		}
	}
	search := func(q string) searchindex.Hits {
		t.Helper()
		var hits searchindex.Hits
		testenv.Eventually(t, testenv.SearchWait, "the documents searchable", func() bool {
			hits, err = ix.Search(ctx, searchindex.Query{Token: token, Chat: 1, Q: q, Size: 10})
			return err == nil && hits.Total > 0
		})
		return hits
	}
	index(ix.Alias, "hello world", "help me", "other")
	if hits := search("hel"); hits.Total != 2 || fmt.Sprint(sorted(hits.Numbers)) != "[1 2]" {
		t.Errorf("hel finds %+v", hits)
	}
	if n, err := ix.Count(ctx, token, 1); err != nil || n != 3 {
		t.Errorf("count %d, %v", n, err)
	}

	// A new version, filled and swapped in.
	if err := ix.Create(ctx, 2, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := ix.Exists(ctx, 2); err != nil || !ok {
		t.Fatalf("version 2 exists: %v, %v", ok, err)
	}
	index(ix.VersionName(2), "only one")
	if err := ix.SwapAlias(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if v, err := ix.Current(ctx); err != nil || v != 2 {
		t.Fatalf("after the swap: version %d, %v", v, err)
	}
	if err := ix.DeleteVersion(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ok, err := ix.Exists(ctx, 1); err != nil || ok {
		t.Errorf("version 1 exists after its delete: %v, %v", ok, err)
	}
	if hits := search("one"); hits.Total != 1 {
		t.Errorf("one finds %+v in the new version", hits)
	}
	if n, err := ix.Count(ctx, token, 1); err != nil || n != 1 {
		t.Errorf("count in the new version %d, %v", n, err)
	}
}

func sorted(ns []int64) []int64 {
	out := slices.Clone(ns)
	slices.Sort(out)
	return out
}
