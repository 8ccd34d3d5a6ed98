package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/zincsearch/zincsearch/pkg/config"
	"github.com/zincsearch/zincsearch/pkg/core"
	zincerrors "github.com/zincsearch/zincsearch/pkg/errors"
	"github.com/zincsearch/zincsearch/pkg/meta"
)

// searchHandler serves _search in place of ZincSearch's SearchDSL, fixing:
//   - sort on _score: ZincSearch reads {"_score": "desc"} (and any object
//     form) as a sort on a stored field named "_score", i.e. no score order;
//     it is rewritten to the string form, which sorts by score, descending
//     (ascending score order is not available);
//   - hits carry "sort" values (_score, or the field from _source; dates as
//     epoch milliseconds, as Elasticsearch returns them) when sorting;
//   - search_after is emulated: fetch up to ZINC_MAX_RESULTS hits in sort
//     order and return the first "size" after the given values;
//   - track_total_hits may be a number; hits.total gets "relation": "eq";
//   - size/from may be given as URL parameters.
func searchHandler(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	for _, k := range []string{"size", "from"} {
		if v := c.Query(k); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				body[k] = n
			}
		}
	}
	keys, err := parseSort(body["sort"])
	if err != nil {
		esError(c, http.StatusBadRequest, "parsing_exception", err.Error())
		return
	}
	if len(keys) > 0 {
		zs := make([]any, 0, len(keys))
		for _, k := range keys {
			switch {
			case k.field == "_score":
				zs = append(zs, "_score")
			case k.desc:
				zs = append(zs, map[string]any{k.field: "desc"})
			default:
				zs = append(zs, map[string]any{k.field: "asc"})
			}
		}
		body["sort"] = zs
	} else {
		delete(body, "sort")
	}
	if v, ok := body["track_total_hits"]; ok {
		if _, isBool := v.(bool); !isBool {
			body["track_total_hits"] = true
		}
	}
	size, from := 10, 0
	if v, ok := body["size"].(float64); ok {
		size = int(v)
	} else if v, ok := body["size"].(int); ok {
		size = v
	}
	after, hasAfter := body["search_after"].([]any)
	delete(body, "search_after")
	if hasAfter {
		if len(after) != len(keys) {
			esError(c, http.StatusBadRequest, "illegal_argument_exception",
				"search_after has "+strconv.Itoa(len(after))+" value(s) but sort has "+strconv.Itoa(len(keys)))
			return
		}
		body["from"], body["size"] = from, config.Global.MaxResults
	}

	q := &meta.ZincQuery{Size: 10}
	b, _ := json.Marshal(body)
	if err := json.Unmarshal(b, q); err != nil {
		esError(c, http.StatusBadRequest, "parsing_exception", err.Error())
		return
	}
	names := splitNames(c.Param("target"))
	var resp *meta.SearchResponse
	if len(names) == 1 && !isPattern(names[0]) {
		idx, ok := core.GetIndex(names[0])
		if !ok {
			indexNotFound(c, names[0])
			return
		}
		resp, err = idx.Search(q)
	} else {
		for i, n := range names {
			if n == "_all" {
				names[i] = "*"
			}
		}
		resp, err = core.MultiSearch(names, q)
	}
	if err != nil {
		var ze *zincerrors.Error
		if zincerrors.As(err, &ze) {
			esError(c, http.StatusBadRequest, ze.Type, ze.Reason)
		} else {
			esError(c, http.StatusBadRequest, "search_phase_execution_exception", err.Error())
		}
		return
	}

	var out map[string]any
	b, _ = json.Marshal(resp)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // pass numbers in _source through unchanged
	_ = dec.Decode(&out)
	hitsObj, _ := out["hits"].(map[string]any)
	if total, ok := hitsObj["total"].(map[string]any); ok {
		total["relation"] = "eq"
	}
	hits, _ := hitsObj["hits"].([]any)
	var dates map[string]bool
	if len(keys) > 0 {
		dates = dateFields(names, keys)
	}
	kept := []any{}
	for _, h := range hits {
		hm, ok := h.(map[string]any)
		if !ok {
			continue
		}
		// ZincSearch adds its own @timestamp (ingest time) to every hit and
		// its _source, and a _type; Elasticsearch 8 has neither.
		delete(hm, "@timestamp")
		delete(hm, "_type")
		if src, ok := hm["_source"].(map[string]any); ok {
			delete(src, "@timestamp")
		}
		if len(keys) > 0 {
			vals := sortValues(hm, keys, dates)
			hm["sort"] = vals
			if hasAfter && compareSort(vals, after, keys) <= 0 {
				continue
			}
		}
		kept = append(kept, hm)
	}
	if hasAfter && len(kept) > size {
		kept = kept[:size]
	}
	hitsObj["hits"] = kept
	delete(out, "error")
	c.JSON(http.StatusOK, out)
}

type sortKey struct {
	field string
	desc  bool
}

// parseSort reads Elasticsearch sort syntax: "f", {"f": "desc"},
// {"f": {"order": "desc", ...}}, or a list of those. _doc is dropped.
func parseSort(v any) ([]sortKey, error) {
	var items []any
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		items = v
	default:
		items = []any{v}
	}
	var keys []sortKey
	add := func(field, order string) {
		field = strings.TrimSpace(field)
		desc := strings.EqualFold(order, "desc")
		if order == "" {
			desc = field == "_score"
		}
		if strings.HasPrefix(field, "-") { // ZincSearch's own spelling
			field, desc = field[1:], true
		}
		if field != "" && field != "_doc" {
			keys = append(keys, sortKey{field, desc})
		}
	}
	for _, it := range items {
		switch it := it.(type) {
		case string:
			for _, f := range strings.Split(it, ",") {
				if name, order, ok := strings.Cut(f, ":"); ok {
					add(name, order)
				} else {
					add(f, "")
				}
			}
		case map[string]any:
			for field, spec := range it {
				switch spec := spec.(type) {
				case string:
					add(field, spec)
				case map[string]any:
					order, _ := spec["order"].(string)
					add(field, order)
				default:
					add(field, "")
				}
			}
		default:
			return nil, zincerrors.New(zincerrors.ErrorTypeParsingException, "[sort] unsupported value")
		}
	}
	return keys, nil
}

// dateFields reports which sort fields are mapped as dates in the searched indexes.
func dateFields(names []string, keys []sortKey) map[string]bool {
	out := map[string]bool{}
	for _, n := range expandNames(strings.Join(names, ",")) {
		idx, ok := core.GetIndex(n)
		if !ok || idx.GetMappings() == nil {
			continue
		}
		for _, k := range keys {
			if p, ok := idx.GetMappings().GetProperty(k.field); ok && p.Type == "date" {
				out[k.field] = true
			}
		}
	}
	return out
}

func sortValues(hit map[string]any, keys []sortKey, dates map[string]bool) []any {
	src, _ := hit["_source"].(map[string]any)
	vals := make([]any, len(keys))
	for i, k := range keys {
		if k.field == "_score" {
			vals[i] = hit["_score"]
			continue
		}
		v := lookup(src, k.field)
		if s, ok := v.(string); ok && dates[k.field] {
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
				if t, err := time.Parse(layout, s); err == nil {
					v = t.UnixMilli()
					break
				}
			}
		}
		vals[i] = v
	}
	return vals
}

func lookup(src map[string]any, field string) any {
	if v, ok := src[field]; ok {
		return v
	}
	var cur any = src
	for _, p := range strings.Split(field, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// compareSort compares two sort tuples in the order given by keys: <0 when
// a sorts before b. Missing values sort last, as in Elasticsearch.
func compareSort(a, b []any, keys []sortKey) int {
	for i, k := range keys {
		c := compareValue(a[i], b[i])
		if c == 0 {
			continue
		}
		if a[i] == nil || b[i] == nil {
			return c
		}
		if k.desc {
			return -c
		}
		return c
	}
	return 0
}

func compareValue(a, b any) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return 1
		default:
			return -1
		}
	}
	af, aNum := toFloat(a)
	bf, bNum := toFloat(b)
	if aNum && bNum {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	return strings.Compare(toString(a), toString(b))
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}
