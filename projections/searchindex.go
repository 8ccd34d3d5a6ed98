package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/chatsys/chat/catalog"
)

// IndexVersion is the version of the index settings and mappings below; a
// replay into a new version builds <alias>-v<N+1> and swaps the alias.
const IndexVersion = 1

// Index is a namespace's message index: an alias in front of a versioned index.
type Index struct {
	es    *elasticsearch.Client
	Alias string
}

// NewIndex returns the message index of a namespace.
func NewIndex(es *elasticsearch.Client, namespace string) *Index {
	return &Index{es: es, Alias: catalog.New(namespace).SearchAlias()}
}

// VersionName is the concrete index behind the alias for a version.
func (ix *Index) VersionName(version int) string { return catalog.IndexVersion(ix.Alias, version) }

// Settings and mappings. body is the message text with accents folded; its
// sub-fields index every word's prefixes (edge n-grams from 1 character) and
// infixes (n-grams from 3), and are searched with a plain lowercase
// analyzer, so a query term matches a word it begins or (with 3 characters or
// more) is inside of. Gram filters, not tokenizers: an edge-n-gram tokenizer
// would see only a field's first word on some engines.
const indexBody = `{
  "settings": {
    "index": {"number_of_shards": 1, "max_ngram_diff": 19},
    "analysis": {
      "filter": {
        "grams":    {"type": "ngram", "min_gram": 3, "max_gram": 20},
        "prefixes": {"type": "edge_ngram", "min_gram": 1, "max_gram": 20}
      },
      "analyzer": {
        "body_ngram":  {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "grams"]},
        "body_prefix": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "prefixes"]},
        "body_search": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]}
      }
    }
  },
  "mappings": {
    "dynamic": "strict",
    "properties": {
      "token":       {"type": "keyword"},
      "chat_number": {"type": "long"},
      "number":      {"type": "long"},
      "body": {
        "type": "text", "analyzer": "standard",
        "fields": {
          "ngram":  {"type": "text", "analyzer": "body_ngram", "search_analyzer": "body_search"},
          "prefix": {"type": "text", "analyzer": "body_prefix", "search_analyzer": "body_search"}
        }
      }
    }
  }
}`

// Ensure creates the current index version and points the alias at it,
// unless the alias exists already.
func (ix *Index) Ensure(ctx context.Context) error {
	res, err := ix.es.Indices.ExistsAlias([]string{ix.Alias}, ix.es.Indices.ExistsAlias.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		return nil
	}
	return ix.Create(ctx, IndexVersion, true)
}

// Create creates an index version; with alias, it also points the alias at it.
func (ix *Index) Create(ctx context.Context, version int, alias bool) error {
	name := ix.VersionName(version)
	res, err := ix.es.Indices.Create(name, ix.es.Indices.Create.WithBody(strings.NewReader(indexBody)), ix.es.Indices.Create.WithContext(ctx))
	if err := check(res, err, "create index "+name); err != nil && !strings.Contains(err.Error(), "resource_already_exists_exception") {
		return err
	}
	if !alias {
		return nil
	}
	res, err = ix.es.Indices.PutAlias([]string{name}, ix.Alias, ix.es.Indices.PutAlias.WithContext(ctx))
	return check(res, err, "alias "+ix.Alias)
}

// Delete removes every version of the index (tests use it).
func (ix *Index) Delete(ctx context.Context) error {
	res, err := ix.es.Indices.Delete([]string{catalog.IndexVersions(ix.Alias)}, ix.es.Indices.Delete.WithContext(ctx))
	return check(res, err, "delete index")
}

// check turns a failed call or an error status into an error, and closes the
// body of a successful one.
func check(res *esapi.Response, err error, what string) error {
	if err != nil {
		return fmt.Errorf("elasticsearch: %s: %w", what, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("elasticsearch: %s: %s: %s", what, res.Status(), b)
	}
	return nil
}

// decode reads a successful JSON answer into v.
func decode(res *esapi.Response, err error, what string, v any) error {
	if err != nil {
		return fmt.Errorf("elasticsearch: %s: %w", what, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("elasticsearch: %s: %w", what, err)
	}
	if res.IsError() {
		return fmt.Errorf("elasticsearch: %s: %s: %s", what, res.Status(), truncate(b, 4096))
	}
	return json.NewDecoder(bytes.NewReader(b)).Decode(v)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
