package main

// Shims: small handlers and middleware that make ZincSearch answer closer to
// Elasticsearch 8 where its own /es/* handlers are missing or differ enough to
// break ordinary client code. Each one is listed in README.md.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog/log"

	"github.com/zincsearch/zincsearch/pkg/config"
	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/handlers/index"
	"github.com/zincsearch/zincsearch/pkg/handlers/search"
	"github.com/zincsearch/zincsearch/pkg/ider"
	"github.com/zincsearch/zincsearch/pkg/meta"
)

// ---------------------------------------------------------------- errors

func esError(c *gin.Context, status int, typ, reason string, extra ...any) {
	cause := gin.H{"type": typ, "reason": reason}
	for i := 0; i+1 < len(extra); i += 2 {
		cause[fmt.Sprint(extra[i])] = extra[i+1]
	}
	errBody := gin.H{"root_cause": []gin.H{cause}}
	for k, v := range cause {
		errBody[k] = v
	}
	if c.Request.Method == http.MethodHead {
		c.AbortWithStatus(status)
		return
	}
	c.AbortWithStatusJSON(status, gin.H{"error": errBody, "status": status})
}

func indexNotFound(c *gin.Context, name string) {
	esError(c, http.StatusNotFound, "index_not_found_exception", "no such index ["+name+"]",
		"index", name, "resource.type", "index_or_alias", "resource.id", name)
}

// ---------------------------------------------------------------- names and aliases

func splitNames(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isPattern(name string) bool { return name == "_all" || strings.Contains(name, "*") }

func matches(pattern, name string) bool {
	if pattern == "_all" || pattern == "*" {
		return true
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

func indexNames() []string {
	var out []string
	for _, idx := range core.ZINC_INDEX_LIST.List() {
		out = append(out, idx.GetName())
	}
	sort.Strings(out)
	return out
}

// aliasIndexes returns the indexes behind alias name, if name is an alias
// with at least one index (ZincSearch keeps emptied aliases as empty lists).
func aliasIndexes(name string) ([]string, bool) {
	if _, isIndex := core.GetIndex(name); isIndex {
		return nil, false
	}
	idx, ok := core.ZINC_INDEX_ALIAS_LIST.GetIndexesForAlias(name)
	return idx, ok && len(idx) > 0
}

// expandNames resolves a comma-separated target (aliases, wildcards, _all)
// to concrete index names.
func expandNames(target string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	parts := splitNames(target)
	if len(parts) == 0 {
		parts = []string{"_all"}
	}
	for _, p := range parts {
		switch {
		case isPattern(p):
			for _, n := range indexNames() {
				if matches(p, n) {
					add(n)
				}
			}
		default:
			if idx, ok := aliasIndexes(p); ok {
				for _, n := range idx {
					add(n)
				}
			} else {
				add(p)
			}
		}
	}
	return out
}

func setParam(c *gin.Context, key, value string) {
	for i := range c.Params {
		if c.Params[i].Key == key {
			c.Params[i].Value = value
			return
		}
	}
	c.Params = append(c.Params, gin.Param{Key: key, Value: value})
}

// readAlias rewrites an alias in :target to its indexes (comma-joined), like
// ZincSearch's IndexAliasMiddleware but per comma-separated part.
func readAlias(c *gin.Context) {
	parts := splitNames(c.Param("target"))
	var out []string
	changed := false
	for _, p := range parts {
		if idx, ok := aliasIndexes(p); ok {
			out = append(out, idx...)
			changed = true
		} else {
			out = append(out, p)
		}
	}
	if changed {
		setParam(c, "target", strings.Join(out, ","))
	}
}

// resolveWrite maps a write target to a single index.
func resolveWrite(name string) (string, error) {
	idx, ok := aliasIndexes(name)
	if !ok {
		return name, nil
	}
	if len(idx) != 1 {
		return "", fmt.Errorf("no write index is defined for alias [%s]. The write index may be explicitly "+
			"disabled using is_write_index=false or the alias points to multiple indices without one being "+
			"designated as a write index", name)
	}
	return idx[0], nil
}

func writeAlias(c *gin.Context) {
	name, err := resolveWrite(c.Param("target"))
	if err != nil {
		esError(c, http.StatusBadRequest, "illegal_argument_exception", err.Error())
		return
	}
	setParam(c, "target", name)
}

// requireIndex answers 404 index_not_found_exception (ZincSearch: 400, or it
// silently creates the index) when a concrete target index does not exist.
func requireIndex(c *gin.Context) {
	for _, p := range splitNames(c.Param("target")) {
		if isPattern(p) {
			continue
		}
		if _, ok := core.GetIndex(p); !ok {
			indexNotFound(c, p)
			return
		}
	}
}

func existsIndex(c *gin.Context) {
	parts := splitNames(c.Param("target"))
	for _, p := range parts {
		if _, ok := core.GetIndex(p); !ok && !isPattern(p) {
			c.Status(http.StatusNotFound)
			return
		}
	}
	c.Status(http.StatusOK)
}

// ---------------------------------------------------------------- refresh emulation
//
// ZincSearch makes writes searchable when a background ticker (every
// ZINC_WAL_SYNC_INTERVAL) moves them from its write-ahead log into the index.
// We remember when each index was last written; waitVisible sleeps until two
// ticks have passed since then and the log has been drained.

var lastWrite = struct {
	sync.Mutex
	at map[string]time.Time
}{at: map[string]time.Time{}}

func markWritten(names ...string) {
	now := time.Now()
	lastWrite.Lock()
	for _, n := range names {
		lastWrite.at[n] = now
	}
	lastWrite.Unlock()
}

// visibleWithin bounds waitVisible. ZincSearch's log consumer visits every
// index's shards in one pass, and a pass can take tens of seconds while
// other indexes are busy or closing (a close waits for the pass): a refresh
// that gave up sooner answered before the writes were searchable, which
// Elasticsearch's never does.
const visibleWithin = 2 * time.Minute

func waitVisible(names ...string) {
	interval := config.Global.WalSyncInterval
	deadline := time.Now().Add(visibleWithin)
	for _, n := range names {
		lastWrite.Lock()
		at, ok := lastWrite.at[n]
		lastWrite.Unlock()
		if !ok {
			continue
		}
		if d := time.Until(at.Add(2*interval + 20*time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		idx, ok := core.GetIndex(n)
		if !ok {
			continue
		}
		// Once consumed, each shard's log keeps exactly its last entry.
		for idx.GetWALSize() > uint64(idx.GetShardNum()) {
			if time.Now().After(deadline) {
				log.Warn().Str("index", n).Uint64("wal", idx.GetWALSize()).Msg("pending writes not consumed in time")
				break
			}
			time.Sleep(interval / 4)
		}
	}
}

func wantsRefresh(c *gin.Context) bool {
	v, ok := c.GetQuery("refresh")
	return ok && v != "false"
}

// captureWriter holds a response back so that ?refresh can delay it.
type captureWriter struct {
	gin.ResponseWriter
	status  int
	buf     bytes.Buffer
	written bool
}

func (w *captureWriter) WriteHeader(code int)        { w.status = code }
func (w *captureWriter) WriteHeaderNow()             { w.written = true }
func (w *captureWriter) Write(b []byte) (int, error) { w.written = true; return w.buf.Write(b) }
func (w *captureWriter) WriteString(s string) (int, error) {
	w.written = true
	return w.buf.WriteString(s)
}
func (w *captureWriter) Status() int   { return w.status }
func (w *captureWriter) Size() int     { return w.buf.Len() }
func (w *captureWriter) Written() bool { return w.written }
func (w *captureWriter) Flush()        {}

// writeTracker records which indexes a write touched and, for
// ?refresh=true|wait_for, holds the response until the writes are searchable.
func writeTracker(c *gin.Context) {
	var cw *captureWriter
	if wantsRefresh(c) {
		cw = &captureWriter{ResponseWriter: c.Writer, status: http.StatusOK}
		c.Writer = cw
	}
	c.Next()
	var names []string
	if v, ok := c.Get("zs.indexes"); ok {
		names, _ = v.([]string)
	} else {
		names = splitNames(c.Param("target"))
	}
	markWritten(names...)
	if cw == nil {
		return
	}
	if cw.status < 300 {
		waitVisible(names...)
	}
	c.Writer = cw.ResponseWriter
	c.Writer.WriteHeader(cw.status)
	_, _ = c.Writer.Write(cw.buf.Bytes())
}

func refresh(c *gin.Context) {
	names := expandNames(c.Param("target"))
	waitVisible(names...)
	n := len(names)
	c.JSON(http.StatusOK, gin.H{"_shards": gin.H{"total": n, "successful": n, "failed": 0}})
}

// ---------------------------------------------------------------- JSON helpers

// decodeJSON decodes one JSON value; numbers become float64, which is what
// ZincSearch's query parser and document checks expect.
func decodeJSON(r io.Reader, v any) error {
	err := json.NewDecoder(r).Decode(v)
	if err == io.EOF {
		return nil
	}
	return err
}

// readBody decodes the request body into a map (nil body: empty map) and
// keeps the raw bytes.
func readBody(c *gin.Context) (map[string]any, error) {
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return nil, err
	}
	body := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := decodeJSON(bytes.NewReader(raw), &body); err != nil {
			return nil, err
		}
	}
	return body, nil
}

func replaceBody(c *gin.Context, v any) {
	b, _ := json.Marshal(v)
	c.Request.Body = io.NopCloser(bytes.NewReader(b))
	c.Request.ContentLength = int64(len(b))
}

// callHandler runs a ZincSearch handler into a recorder.
func callHandler(h gin.HandlerFunc, params gin.Params) (int, []byte) {
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	c.Params = params
	h(c)
	return rec.Code, rec.Body.Bytes()
}

// ---------------------------------------------------------------- indices

// normalizeSettings accepts the Elasticsearch spellings {"index": {...}} and
// "index.foo" and flattens them to what ZincSearch reads
// (number_of_shards, number_of_replicas, analysis). Other keys (e.g.
// max_ngram_diff) are accepted and ignored by ZincSearch.
func normalizeSettings(in map[string]any) map[string]any {
	out := map[string]any{}
	var put func(keys []string, v any)
	put = func(keys []string, v any) {
		m := out
		for _, k := range keys[:len(keys)-1] {
			sub, ok := m[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[k] = sub
			}
			m = sub
		}
		m[keys[len(keys)-1]] = v
	}
	for k, v := range in {
		if k == "index" {
			if sub, ok := v.(map[string]any); ok {
				for k2, v2 := range normalizeSettings(sub) {
					put([]string{k2}, v2)
				}
				continue
			}
		}
		k = strings.TrimPrefix(k, "index.")
		put(strings.Split(k, "."), v)
	}
	for _, k := range []string{"number_of_shards", "number_of_replicas"} {
		switch v := out[k].(type) {
		case string:
			n, _ := strconv.Atoi(v)
			out[k] = n
		case float64:
			out[k] = int64(v)
		}
	}
	return out
}

func createIndex(c *gin.Context) {
	name := c.Param("target")
	body, err := readBody(c)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	if _, ok := core.GetIndex(name); ok {
		esError(c, http.StatusBadRequest, "resource_already_exists_exception",
			"index ["+name+"/zinc] already exists", "index", name)
		return
	}
	if _, ok := aliasIndexes(name); ok {
		esError(c, http.StatusBadRequest, "invalid_index_name_exception",
			"Invalid index name ["+name+"], already exists as alias", "index", name)
		return
	}
	req := meta.IndexSimple{Name: name}
	if s, ok := body["settings"].(map[string]any); ok {
		b, _ := json.Marshal(normalizeSettings(s))
		req.Settings = new(meta.IndexSettings)
		if err := json.Unmarshal(b, req.Settings); err != nil {
			esError(c, http.StatusBadRequest, "illegal_argument_exception", "settings: "+err.Error())
			return
		}
	}
	if m, ok := body["mappings"].(map[string]any); ok {
		req.Mappings = m
	}
	if err := index.CreateIndexWorker(&req, name); err != nil {
		esError(c, http.StatusBadRequest, "illegal_argument_exception", err.Error(), "index", name)
		return
	}
	if aliases, ok := body["aliases"].(map[string]any); ok {
		for a := range aliases {
			addAlias(a, []string{name})
		}
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true, "shards_acknowledged": true, "index": name})
}

func settingsOf(idx *core.Index) map[string]any {
	out := map[string]any{}
	if s := idx.GetSettings(); s != nil {
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &out)
	}
	out["number_of_shards"] = strconv.FormatInt(idx.GetShardNum(), 10)
	if _, ok := out["number_of_replicas"]; !ok {
		out["number_of_replicas"] = "0"
	}
	out["provided_name"] = idx.GetName()
	return out
}

func aliasesOf(name string) gin.H {
	out := gin.H{}
	for _, a := range core.ZINC_INDEX_ALIAS_LIST.GetAliasesForIndex(name) {
		out[a] = gin.H{}
	}
	return out
}

func getIndex(c *gin.Context) {
	out := gin.H{}
	for _, n := range expandNames(c.Param("target")) {
		idx, ok := core.GetIndex(n)
		if !ok {
			continue
		}
		var mappings any = gin.H{}
		if code, b := callHandler(index.GetESMapping, gin.Params{{Key: "target", Value: n}}); code == http.StatusOK {
			var m map[string]map[string]any
			if json.Unmarshal(b, &m) == nil {
				mappings = m[n]["mappings"]
			}
		}
		out[n] = gin.H{"aliases": aliasesOf(n), "mappings": mappings, "settings": gin.H{"index": settingsOf(idx)}}
	}
	c.JSON(http.StatusOK, out)
}

func getSettings(c *gin.Context) {
	out := gin.H{}
	for _, n := range expandNames(c.Param("target")) {
		if idx, ok := core.GetIndex(n); ok {
			out[n] = gin.H{"settings": gin.H{"index": settingsOf(idx)}}
		}
	}
	c.JSON(http.StatusOK, out)
}

// deleteIndex closes each index before ZincSearch deletes it. Its delete
// closes the index while it holds the lock of the list of indexes, and a
// close waits for the write-ahead-log consumer to come round to the index,
// which under load took up to 50 s: every request that looks an index up
// waited behind it. Closed first, the delete finds it closed and holds
// the lock for an instant.
func deleteIndex(c *gin.Context) {
	for _, n := range expandNames(c.Param("target")) {
		idx, ok := core.GetIndex(n)
		if !ok {
			continue
		}
		for _, a := range core.ZINC_INDEX_ALIAS_LIST.GetAliasesForIndex(n) {
			_ = core.ZINC_INDEX_ALIAS_LIST.RemoveIndexesFromAlias(a, []string{n})
		}
		if err := idx.Close(); err != nil {
			esError(c, http.StatusInternalServerError, "exception", err.Error(), "index", n)
			return
		}
		if err := core.DeleteIndex(n); err != nil {
			esError(c, http.StatusInternalServerError, "exception", err.Error(), "index", n)
			return
		}
		lastWrite.Lock()
		delete(lastWrite.at, n)
		lastWrite.Unlock()
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true})
}

// putMapping drops fields the index already maps (ZincSearch rejects any
// re-mapping with 400; Elasticsearch accepts an identical one) and answers
// like Elasticsearch.
func putMapping(c *gin.Context) {
	name := c.Param("target")
	body, err := readBody(c)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	if idx, ok := core.GetIndex(name); ok {
		if props, ok := body["properties"].(map[string]any); ok {
			if m := idx.GetMappings(); m != nil {
				for f := range props {
					if _, exists := m.GetProperty(f); exists {
						delete(props, f)
					}
				}
			}
			if len(props) == 0 {
				c.JSON(http.StatusOK, gin.H{"acknowledged": true})
				return
			}
		}
	}
	replaceBody(c, body)
	code, resp := callHandlerWithRequest(c, index.SetMapping)
	if code != http.StatusOK {
		esError(c, code, "illegal_argument_exception", string(resp), "index", name)
		return
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true})
}

// callHandlerWithRequest runs h on a copy of c's request into a recorder.
func callHandlerWithRequest(c *gin.Context, h gin.HandlerFunc) (int, []byte) {
	rec := httptest.NewRecorder()
	tc, _ := gin.CreateTestContext(rec)
	tc.Request = c.Request
	tc.Params = c.Params
	h(tc)
	return rec.Code, rec.Body.Bytes()
}

// ---------------------------------------------------------------- search helpers

func count(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	q := &meta.ZincQuery{Query: body["query"], Size: 0}
	if q.Query == nil {
		q.Query = map[string]any{"match_all": map[string]any{}}
	}
	names := expandNames(c.Param("target"))
	var resp *meta.SearchResponse
	if len(names) == 1 {
		idx, ok := core.GetIndex(names[0])
		if !ok {
			indexNotFound(c, names[0])
			return
		}
		resp, err = idx.Search(q)
	} else {
		resp, err = core.MultiSearch(names, q)
	}
	if err != nil {
		esError(c, http.StatusBadRequest, "search_phase_execution_exception", err.Error())
		return
	}
	n := len(names)
	c.JSON(http.StatusOK, gin.H{"count": resp.Hits.Total.Value,
		"_shards": gin.H{"total": n, "successful": n, "skipped": 0, "failed": 0}})
}

// deleteByQuery: ZincSearch deletes only the first page of hits ("size",
// default 10). Default the page to max_docs or ZINC_MAX_RESULTS (10000).
func deleteByQuery(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	if _, ok := body["size"]; !ok {
		size := config.Global.MaxResults
		if v, ok := body["max_docs"].(float64); ok {
			size = int(v)
		} else if v := c.Query("max_docs"); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				size = n
			}
		}
		body["size"] = size
	}
	delete(body, "max_docs")
	replaceBody(c, body)
	search.DeleteByQuery(c)
}

// ---------------------------------------------------------------- aliases

type aliasAction struct {
	Index   string   `json:"index"`
	Indices []string `json:"indices"`
	Alias   string   `json:"alias"`
	Aliases []string `json:"aliases"`
}

func (a aliasAction) indexes() []string {
	if a.Index != "" {
		return append([]string{a.Index}, a.Indices...)
	}
	return a.Indices
}

func (a aliasAction) aliasNames() []string {
	if a.Alias != "" {
		return append([]string{a.Alias}, a.Aliases...)
	}
	return a.Aliases
}

// updateAliases implements POST /_aliases (add, remove, remove_index), in
// order, without the duplicate entries ZincSearch's own handler creates.
func updateAliases(c *gin.Context) {
	var req struct {
		Actions []map[string]aliasAction `json:"actions"`
	}
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	type op struct {
		kind    string
		indexes []string
		aliases []string
	}
	var ops []op
	for _, action := range req.Actions {
		for kind, a := range action {
			var concrete []string
			for _, p := range a.indexes() {
				if isPattern(p) {
					concrete = append(concrete, expandNames(p)...)
					continue
				}
				if _, ok := core.GetIndex(p); !ok {
					indexNotFound(c, p)
					return
				}
				concrete = append(concrete, p)
			}
			switch kind {
			case "add", "remove":
				for _, al := range a.aliasNames() {
					if _, ok := core.GetIndex(al); ok {
						esError(c, http.StatusBadRequest, "invalid_alias_name_exception",
							"Invalid alias name ["+al+"]: an index or data stream exists with the same name as the alias")
						return
					}
				}
			case "remove_index":
			default:
				esError(c, http.StatusBadRequest, "illegal_argument_exception", "unsupported alias action ["+kind+"]")
				return
			}
			ops = append(ops, op{kind, concrete, a.aliasNames()})
		}
	}
	for _, o := range ops {
		switch o.kind {
		case "add":
			for _, al := range o.aliases {
				addAlias(al, o.indexes)
			}
		case "remove":
			for _, al := range o.aliases {
				_ = core.ZINC_INDEX_ALIAS_LIST.RemoveIndexesFromAlias(al, o.indexes)
			}
		case "remove_index":
			for _, n := range o.indexes {
				for _, a := range core.ZINC_INDEX_ALIAS_LIST.GetAliasesForIndex(n) {
					_ = core.ZINC_INDEX_ALIAS_LIST.RemoveIndexesFromAlias(a, []string{n})
				}
				_ = core.DeleteIndex(n)
			}
		}
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true, "errors": false})
}

// aliasAdds makes each addAlias a read of the alias and an add of what it
// lacks in one step: ZincSearch appends an index to an alias again when
// asked twice, and an alias that names its index twice has, to the write
// path, two indexes and no write index. Two requests that put the same
// alias at once (each partition's projector makes sure of its index) did
// exactly that.
var aliasAdds sync.Mutex

func addAlias(alias string, indexes []string) {
	aliasAdds.Lock()
	defer aliasAdds.Unlock()
	have, _ := core.ZINC_INDEX_ALIAS_LIST.GetIndexesForAlias(alias)
	var add []string
	for _, n := range indexes {
		dup := false
		for _, h := range have {
			dup = dup || h == n
		}
		if !dup {
			add = append(add, n)
			have = append(have, n)
		}
	}
	if len(add) > 0 {
		_ = core.ZINC_INDEX_ALIAS_LIST.AddIndexesToAlias(alias, add)
	}
}

func putAlias(c *gin.Context) {
	names := expandNames(c.Param("target"))
	for _, n := range names {
		if _, ok := core.GetIndex(n); !ok {
			indexNotFound(c, n)
			return
		}
	}
	for _, al := range splitNames(c.Param("alias")) {
		addAlias(al, names)
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true})
}

func deleteAlias(c *gin.Context) {
	names := expandNames(c.Param("target"))
	found := false
	for _, al := range splitNames(c.Param("alias")) {
		have, _ := core.ZINC_INDEX_ALIAS_LIST.GetIndexesForAlias(al)
		for _, h := range have {
			for _, n := range names {
				found = found || h == n
			}
		}
		_ = core.ZINC_INDEX_ALIAS_LIST.RemoveIndexesFromAlias(al, names)
	}
	if !found {
		esError(c, http.StatusNotFound, "aliases_not_found_exception", "aliases ["+c.Param("alias")+"] missing")
		return
	}
	c.JSON(http.StatusOK, gin.H{"acknowledged": true})
}

// getAliases implements GET/HEAD [/{index}]/_alias[/{alias}] (and _aliases).
func getAliases(c *gin.Context) {
	var targets []string
	if t := c.Param("target"); t != "" {
		targets = expandNames(t)
	} else {
		targets = indexNames()
	}
	patterns := splitNames(c.Param("alias"))
	out := gin.H{}
	for _, n := range targets {
		if _, ok := core.GetIndex(n); !ok {
			indexNotFound(c, n)
			return
		}
		aliases := gin.H{}
		for _, a := range core.ZINC_INDEX_ALIAS_LIST.GetAliasesForIndex(n) {
			if len(patterns) == 0 {
				aliases[a] = gin.H{}
				continue
			}
			for _, p := range patterns {
				if matches(p, a) {
					aliases[a] = gin.H{}
				}
			}
		}
		if len(patterns) > 0 && len(aliases) == 0 {
			continue
		}
		out[n] = gin.H{"aliases": aliases}
	}
	if len(patterns) > 0 && len(out) == 0 {
		if c.Request.Method == http.MethodHead {
			c.Status(http.StatusNotFound)
			return
		}
		c.JSON(http.StatusNotFound, gin.H{"error": "alias [" + strings.Join(patterns, ",") + "] missing", "status": 404})
		return
	}
	if c.Request.Method == http.MethodHead {
		c.Status(http.StatusOK)
		return
	}
	c.JSON(http.StatusOK, out)
}

// ---------------------------------------------------------------- documents

func docKey(index, id string) string { return index + "\x00" + id }

// currentSource returns a document's source as the index will see it once
// pending writes are applied (GET in ZincSearch is not realtime).
func currentSource(indexName, id string) (map[string]any, bool) {
	waitVisible(indexName)
	return indexedSource(indexName, id)
}

// indexedSource returns a document's source as the index has it now.
func indexedSource(indexName, id string) (map[string]any, bool) {
	idx, ok := core.GetIndex(indexName)
	if !ok {
		return nil, false
	}
	hit, err := idx.GetDocument(id)
	if err != nil || hit == nil {
		return nil, false
	}
	src, ok := hit.Source.(map[string]any)
	if !ok {
		b, _ := json.Marshal(hit.Source)
		src = map[string]any{}
		_ = decodeJSON(bytes.NewReader(b), &src)
	}
	return src, true
}

// mergeDoc merges patch into base recursively (Elasticsearch partial update).
func mergeDoc(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		pm, pok := v.(map[string]any)
		bm, bok := out[k].(map[string]any)
		if pok && bok {
			out[k] = mergeDoc(bm, pm)
		} else {
			out[k] = v
		}
	}
	return out
}

type updateBody struct {
	Doc         map[string]any `json:"doc"`
	DocAsUpsert bool           `json:"doc_as_upsert"`
	Upsert      map[string]any `json:"upsert"`
	Script      any            `json:"script"`
}

// applyUpdate computes the full document for an Elasticsearch update request.
// created is true when the document did not exist; ok is false when it did
// not exist and no upsert was given.
func applyUpdate(existing map[string]any, found bool, u updateBody) (doc map[string]any, created, ok bool) {
	switch {
	case found:
		return mergeDoc(existing, u.Doc), false, true
	case u.DocAsUpsert:
		return u.Doc, true, true
	case u.Upsert != nil:
		return u.Upsert, true, true
	}
	return nil, false, false
}

func writeResult(indexName, id, result string) gin.H {
	return gin.H{"_index": indexName, "_id": id, "_version": 1, "result": result,
		"_shards": gin.H{"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1}
}

func updateDoc(c *gin.Context) {
	indexName, id := c.Param("target"), c.Param("id")
	var u updateBody
	if err := decodeJSON(c.Request.Body, &u); err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	if u.Script != nil {
		esError(c, http.StatusBadRequest, "illegal_argument_exception", "zincsearch stand-in: scripted updates are not supported")
		return
	}
	existing, found := currentSource(indexName, id)
	doc, created, ok := applyUpdate(existing, found, u)
	if !ok {
		esError(c, http.StatusNotFound, "document_missing_exception", "["+id+"]: document missing",
			"index", indexName, "shard", "0")
		return
	}
	idx, _, err := core.GetOrCreateIndex(indexName, "", 0)
	if err == nil {
		err = idx.CreateDocument(id, doc, true)
	}
	if err != nil {
		esError(c, http.StatusInternalServerError, "exception", err.Error())
		return
	}
	result := "updated"
	if created {
		result = "created"
	}
	c.JSON(http.StatusOK, writeResult(indexName, id, result))
}

// indexDoc serves PUT/POST /{index}/_doc[/{id}] and /{index}/_create/{id}.
// (ZincSearch's CreateUpdate answers 500 for a bad document and takes an
// "_id" field of the document as its id.) op_type=create, and _create,
// fail with 409 when the document exists.
func indexDoc(c *gin.Context) {
	indexName, id := c.Param("target"), c.Param("id")
	var doc map[string]any
	if err := decodeJSON(c.Request.Body, &doc); err != nil || doc == nil {
		esError(c, http.StatusBadRequest, "document_parsing_exception", "failed to parse document: "+errText(err))
		return
	}
	create := c.Query("op_type") == "create" || strings.Contains(c.FullPath(), "/_create/")
	if create && id != "" {
		if _, found := currentSource(indexName, id); found {
			esError(c, http.StatusConflict, "version_conflict_engine_exception",
				"["+id+"]: version conflict, document already exists (current version [1])",
				"index", indexName, "shard", "0")
			return
		}
	}
	update := id != ""
	if id == "" {
		id = ider.Generate()
	}
	idx, _, err := core.GetOrCreateIndex(indexName, "", 0)
	if err == nil {
		err = idx.CreateDocument(id, doc, update)
	}
	if err != nil {
		esError(c, http.StatusBadRequest, "document_parsing_exception", err.Error(), "index", indexName)
		return
	}
	c.JSON(http.StatusCreated, writeResult(indexName, id, "created"))
}

func deleteDoc(c *gin.Context) {
	indexName, id := c.Param("target"), c.Param("id")
	idx, _ := core.GetIndex(indexName) // requireIndex ran
	waitVisible(indexName)
	if err := idx.DeleteDocument(id); err != nil {
		if err.Error() == "id not found" {
			c.JSON(http.StatusNotFound, writeResult(indexName, id, "not_found"))
			return
		}
		esError(c, http.StatusInternalServerError, "exception", err.Error())
		return
	}
	c.JSON(http.StatusOK, writeResult(indexName, id, "deleted"))
}

// getDoc serves GET/HEAD /{index}/_doc/{id} and GET /{index}/_source/{id}
// in Elasticsearch's shape (ZincSearch returns a search hit, answers 400 for
// a missing document and creates missing indexes).
func getDoc(c *gin.Context) {
	indexName, id := c.Param("target"), c.Param("id")
	src, found := currentSource(indexName, id)
	sourceOnly := strings.Contains(c.FullPath(), "/_source/")
	switch {
	case c.Request.Method == http.MethodHead:
		if found {
			c.Status(http.StatusOK)
		} else {
			c.Status(http.StatusNotFound)
		}
	case !found && sourceOnly:
		esError(c, http.StatusNotFound, "resource_not_found_exception", "Document not found ["+indexName+"]/["+id+"]")
	case !found:
		c.JSON(http.StatusNotFound, gin.H{"_index": indexName, "_id": id, "found": false})
	case sourceOnly:
		c.JSON(http.StatusOK, src)
	default:
		c.JSON(http.StatusOK, gin.H{"_index": indexName, "_id": id, "_version": 1, "_seq_no": 0,
			"_primary_term": 1, "found": true, "_source": src})
	}
}
