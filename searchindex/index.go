package searchindex

import (
	"context"
	_ "embed"
	"encoding/json"
	"strings"

	"github.com/chatsys/chat/catalog"
)

// Version is the version of the index definition below; a replay into a new
// version builds <alias>-v<N+1> and swaps the alias.
const Version = 1

// definition is the index's settings and mappings. body is the message
// text with accents folded; its sub-fields index every word's prefixes
// (edge n-grams from 1 character) and infixes (n-grams from 3), and are
// searched with a plain lowercase analyzer, so a query term matches a word
// it begins or (with 3 characters or more) is inside of. Gram filters, not
// tokenizers: an edge-n-gram tokenizer would see only a field's first word
// on some engines. The search engine that stands in for Elasticsearch in
// tests reads the same file in its smoke test.
//
//go:embed index.json
var definition string

// Index is a message index: an alias in front of a versioned index.
type Index struct {
	c     *Client
	Alias string
}

// NewIndex returns the message index of a namespace.
func NewIndex(c *Client, namespace string) *Index {
	return &Index{c: c, Alias: catalog.New(namespace).SearchAlias()}
}

// NewScratchIndex returns a temporary message index of a namespace, for
// checks against a cluster; suffix makes it its own.
func NewScratchIndex(c *Client, namespace, suffix string) *Index {
	return &Index{c: c, Alias: catalog.New(namespace).DoctorSearchAlias(suffix)}
}

// VersionName is the concrete index behind the alias for a version.
func (ix *Index) VersionName(version int) string { return catalog.IndexVersion(ix.Alias, version) }

// Ensure creates the current index version and points the alias at it,
// unless the alias exists already.
func (ix *Index) Ensure(ctx context.Context) error {
	es := ix.c.es
	res, err := es.Indices.ExistsAlias([]string{ix.Alias}, es.Indices.ExistsAlias.WithContext(ctx))
	found, err := exists("alias "+ix.Alias+" exists", res, err)
	if err != nil || found {
		return err
	}
	return ix.Create(ctx, Version, true)
}

// Create creates an index version (one that exists already is left as it
// is); with alias, it also points the alias at it.
func (ix *Index) Create(ctx context.Context, version int, alias bool) error {
	es := ix.c.es
	name := ix.VersionName(version)
	res, err := es.Indices.Create(name, es.Indices.Create.WithBody(strings.NewReader(definition)), es.Indices.Create.WithContext(ctx))
	if err := answer("create index "+name, res, err, nil); err != nil && !strings.Contains(err.Error(), "resource_already_exists_exception") {
		return err
	}
	if !alias {
		return nil
	}
	res, err = es.Indices.PutAlias([]string{name}, ix.Alias, es.Indices.PutAlias.WithContext(ctx))
	return answer("alias "+ix.Alias, res, err, nil)
}

// Delete removes every version of the index.
func (ix *Index) Delete(ctx context.Context) error {
	es := ix.c.es
	res, err := es.Indices.Delete([]string{catalog.IndexVersions(ix.Alias)}, es.Indices.Delete.WithContext(ctx))
	return answer("delete index", res, err, nil)
}

// Targets returns the indices the alias points at, in name order; none when
// the alias does not exist.
func (ix *Index) Targets(ctx context.Context) ([]string, error) {
	return ix.c.aliasTargets(ctx, ix.Alias)
}

// Current returns the version the alias points at, 0 when there is none.
func (ix *Index) Current(ctx context.Context) (int, error) {
	names, err := ix.Targets(ctx)
	if err != nil {
		return 0, err
	}
	best := 0
	for _, name := range names {
		if v, ok := catalog.VersionOf(ix.Alias, name); ok && v > best {
			best = v
		}
	}
	return best, nil
}

// Exists reports whether an index version exists.
func (ix *Index) Exists(ctx context.Context, version int) (bool, error) {
	es := ix.c.es
	name := ix.VersionName(version)
	res, err := es.Indices.Exists([]string{name}, es.Indices.Exists.WithContext(ctx))
	return exists("index "+name+" exists", res, err)
}

// DeleteVersion removes one version of the index.
func (ix *Index) DeleteVersion(ctx context.Context, version int) error {
	es := ix.c.es
	name := ix.VersionName(version)
	res, err := es.Indices.Delete([]string{name}, es.Indices.Delete.WithContext(ctx))
	return answer("delete index "+name, res, err, nil)
}

// SwapAlias points the alias from one version to another in one request;
// from 0 means it points at none yet.
func (ix *Index) SwapAlias(ctx context.Context, from, to int) error {
	es := ix.c.es
	actions := []any{map[string]any{"add": map[string]any{"index": ix.VersionName(to), "alias": ix.Alias}}}
	if from > 0 {
		actions = append([]any{map[string]any{"remove": map[string]any{"index": ix.VersionName(from), "alias": ix.Alias}}}, actions...)
	}
	body, err := json.Marshal(map[string]any{"actions": actions})
	if err != nil {
		return err
	}
	res, err := es.Indices.UpdateAliases(strings.NewReader(string(body)), es.Indices.UpdateAliases.WithContext(ctx))
	return answer("swap alias "+ix.Alias, res, err, nil)
}
