package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatsys/chat/config"
	"github.com/chatsys/chat/searchindex"
)

// checkElasticsearch checks the cluster, the namespace's alias and the
// mapping of the index behind it, as package searchindex finds it against
// its definition.
func checkElasticsearch(ctx context.Context, cfg config.Config, c *checkup) {
	where := cfg.ElasticsearchURL
	if u, err := url.Parse(cfg.ElasticsearchURL); err == nil {
		where = u.Host
	}
	c.where = where
	es, err := newElasticsearch(cfg)
	if err != nil {
		c.misconfigured(ctx, "CHAT_ELASTICSEARCH_URL", err)
		return
	}
	const outage = "search answers 503 meanwhile; everything else works"

	if !c.run(ctx, "reachable", func(ctx context.Context) finding {
		version, err := es.Version(ctx)
		if err != nil {
			if searchindex.HasStatus(err, http.StatusUnauthorized, http.StatusForbidden) {
				return fail(fmt.Sprintf("%s: %v", where, err), "check the credentials in CHAT_ELASTICSEARCH_URL")
			}
			return fail(fmt.Sprintf("%s: %v", where, err), "start Elasticsearch, or point CHAT_ELASTICSEARCH_URL at it ("+outage+")")
		}
		return ok("%s, version %s", where, version)
	}) {
		c.stop("Elasticsearch is not reachable")
	}

	messages := searchindex.NewIndex(es, cfg.Namespace)
	var index string // written by the alias check, read only after it passed
	if !c.run(ctx, "alias "+messages.Alias, func(ctx context.Context) finding {
		names, err := messages.Targets(ctx)
		if err != nil {
			return fail(err.Error(), "")
		}
		if len(names) == 0 {
			return fail("does not exist, so the search projection has nowhere to write and search finds nothing",
				"start `chat work`: its search projector creates the index and the alias (`chat replay search` rebuilds them from the event store)")
		}
		if len(names) != 1 {
			return fail(fmt.Sprintf("points at %d indices (%s); searches would read them all", len(names), strings.Join(names, ", ")),
				"point it at the newest one only (POST /_aliases with a remove action for the others), or rebuild with `chat replay search`")
		}
		index = names[0]
		return ok("points at %s", index)
	}) {
		c.stop("the alias is missing or wrong")
	}

	c.run(ctx, "mapping", func(ctx context.Context) finding {
		problems, err := es.MappingProblems(ctx, index)
		if err != nil {
			return fail(err.Error(), "")
		}
		if len(problems) > 0 {
			return fail(index+": "+strings.Join(problems, "; "),
				"rebuild the index with this build's mapping: `chat replay search`")
		}
		return ok("%s: token keyword, chat_number and number numeric, body text with ngram and prefix sub-fields", index)
	})
}
