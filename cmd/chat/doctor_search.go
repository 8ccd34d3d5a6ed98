package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/searchindex"
)

// doctorSearch is `chat doctor search`: the partial-matching cases on the
// configured cluster, within a minute.
func doctorSearch(ctx context.Context, cfg config.Config, out io.Writer) error {
	es, err := newElasticsearch(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintf(out, "checking partial matching on %s\n", cfg.ElasticsearchURL)
	ok, err := checkSearch(ctx, es, cfg.Namespace, out)
	if err != nil {
		return err
	}
	if !ok {
		return errChecksFailed
	}
	fmt.Fprintln(out, "all search checks passed")
	return nil
}

// searchCase is one partial-matching promise of the API, checked by
// checkSearch against a real cluster.
type searchCase struct {
	query string
	want  []int64
	why   string
}

var checkBodies = []string{"Hello, world!", "help me", "Crème brûlée recipe", "something else", "Meet me in Łódź", "supercalifragilisticexpialidocious"}

var searchCases = []searchCase{
	{"hel", []int64{1, 2}, "a prefix matches"},
	{"llo", []int64{1}, "an infix of 3 characters matches"},
	{"world", []int64{1}, "a whole word matches"},
	{"HELLO", []int64{1}, "case is ignored"},
	{"hello world", []int64{1}, "several terms all match"},
	{"hello xyz", nil, "one term matching is not enough"},
	{"creme", []int64{3}, "accents are ignored in the text"},
	{"brûlée", []int64{3}, "accents are ignored in the query"},
	{"lodz", []int64{5}, "letters NFD leaves whole fold too"},
	{"supercalifragilistice", []int64{6}, "a longer prefix than the grams matches"},
	{"supercalifragilisticexpialidocious", []int64{6}, "a whole word longer than the grams matches"},
	{"ld", nil, "an infix of 2 characters does not match"},
	{"xyz", nil, "no match finds nothing"},
}

// checkSearch creates a temporary index with the production settings and
// mappings, indexes a few bodies, runs the partial-matching cases of the API
// and deletes the index. It writes a line per case to out and reports
// whether all passed.
func checkSearch(ctx context.Context, es *searchindex.Client, namespace string, out io.Writer) (bool, error) {
	ix := searchindex.NewScratchIndex(es, namespace, randomSuffix())
	if err := ix.Create(ctx, 1, true); err != nil {
		return false, err
	}
	defer func() { _ = ix.Delete(context.WithoutCancel(ctx)) }()
	fmt.Fprintf(out, "created index %s with the production settings and mappings\n", ix.VersionName(1))

	const token = "doctor"
	var bulk searchindex.Bulk
	for i, b := range checkBodies {
		n := int64(i + 1)
		_ = bulk.Index(ix.Alias, searchindex.DocumentID(token, 1, n), 0, searchindex.Document{Token: token, ChatNumber: 1, Number: n, Body: searchindex.FoldAccents(b)})
	}
	_ = bulk.Index(ix.Alias, searchindex.DocumentID(token, 2, 1), 0, searchindex.Document{Token: token, ChatNumber: 2, Number: 1, Body: "hello from another chat"})
	failed, err := es.Send(ctx, &bulk, true)
	if err != nil {
		return false, err
	}
	if len(failed) > 0 {
		return false, fmt.Errorf("indexing the sample messages failed: %+v", failed)
	}
	fmt.Fprintf(out, "indexed %d messages: %q\n", len(checkBodies), checkBodies)

	run := func(q string) ([]int64, error) {
		hits, err := ix.Search(ctx, searchindex.Query{Token: token, Chat: 1, Q: q, From: 0, Size: 10})
		if err != nil {
			return nil, err
		}
		got := hits.Numbers
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		return got, nil
	}
	// A refresh may lag on engines that ignore wait_for: wait for the index.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := run("something")
		if err != nil {
			return false, err
		}
		if len(got) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok := true
	for _, c := range searchCases {
		got, err := run(c.query)
		if err != nil {
			return false, err
		}
		pass := fmt.Sprint(got) == fmt.Sprint(c.want)
		ok = ok && pass
		mark := "ok  "
		if !pass {
			mark = "FAIL"
		}
		fmt.Fprintf(out, "%s q=%-14q %-42s found %s, want %s\n", mark, c.query, c.why, describe(got), describe(c.want))
	}
	return ok, nil
}

func describe(numbers []int64) string {
	if len(numbers) == 0 {
		return "nothing"
	}
	var parts []string
	for _, n := range numbers {
		parts = append(parts, fmt.Sprintf("%q", checkBodies[n-1]))
	}
	return strings.Join(parts, ", ")
}
