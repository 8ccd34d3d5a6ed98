package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/ider"
)

// bulkHandler serves _bulk in place of ZincSearch's ESBulk, which stops at
// the first failing document yet answers "errors": false (so the rest of the
// request is silently dropped), stores an update's {"doc": ...} wrapper as the
// document, ignores aliases and panics on a delete without _index. Here every
// action runs and gets its own Elasticsearch-shaped item:
//   - index/create/update/delete, aliases resolved to their single index;
//   - create fails with 409 when the document exists;
//   - update merges "doc" into the current document (doc_as_upsert, upsert;
//     404 document_missing_exception otherwise; scripts are unsupported);
//   - a delete of a missing document is a 404 "not_found" item;
//   - with require_alias (the action's or the request's), a target that is
//     not an alias is a 404 index_not_found_exception item, not a new index.
func bulkHandler(c *gin.Context) {
	start := time.Now()
	target := c.Param("target")
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		esError(c, http.StatusBadRequest, "parse_exception", err.Error())
		return
	}
	var lines [][]byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			lines = append(lines, l)
		}
	}

	// Wait once, up front, for earlier writes to the indexes this request
	// reads (create/update/delete); later reads see this request's own
	// writes through pending/deleted.
	var reads []string
	for i := 0; i < len(lines); i++ {
		var action map[string]map[string]any
		if decodeJSON(bytes.NewReader(lines[i]), &action) != nil {
			continue
		}
		for op, m := range action {
			if op != "delete" {
				i++ // skip the source line
			}
			if op == "index" {
				continue
			}
			name, _ := m["_index"].(string)
			if name == "" {
				name = target
			}
			if name, err := resolveWrite(name); err == nil && name != "" {
				reads = append(reads, name)
			}
		}
	}
	waitVisible(reads...)

	items := []gin.H{}
	anyErr := false
	touched := []string{}
	seen := map[string]bool{}
	pending := map[string]map[string]any{} // documents written earlier in this request
	deleted := map[string]bool{}

	item := func(op, index, id string, status int, result string, err error, errType string) {
		it := gin.H{"_index": index, "_id": id, "status": status}
		if err != nil {
			anyErr = true
			it["error"] = gin.H{"type": errType, "reason": err.Error(), "index": index}
		} else {
			it["result"] = result
			it["_version"] = 1
			it["_seq_no"] = 0
			it["_primary_term"] = 1
			it["_shards"] = gin.H{"total": 1, "successful": 1, "failed": 0}
		}
		items = append(items, gin.H{op: it})
	}

	for i := 0; i < len(lines); i++ {
		var action map[string]map[string]any
		if err := decodeJSON(bytes.NewReader(lines[i]), &action); err != nil || len(action) != 1 {
			esError(c, http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line ["+strconv.Itoa(i+1)+"]")
			return
		}
		var op string
		var m map[string]any
		for op, m = range action {
		}
		if m == nil {
			m = map[string]any{}
		}
		var data []byte
		switch op {
		case "index", "create", "update":
			if i+1 >= len(lines) {
				esError(c, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
				return
			}
			i++
			data = lines[i]
		case "delete":
		default:
			esError(c, http.StatusBadRequest, "illegal_argument_exception", "Malformed action/metadata line ["+
				strconv.Itoa(i+1)+"], expected one of [create, delete, index, update] but found ["+op+"]")
			return
		}

		name, _ := m["_index"].(string)
		if name == "" {
			name = target
		}
		id := ""
		switch v := m["_id"].(type) {
		case string:
			id = v
		case float64:
			id = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if name == "" {
			item(op, name, id, http.StatusBadRequest, "", errString("index is missing"), "action_request_validation_exception")
			continue
		}
		if requireAlias(c, m) {
			if _, ok := aliasIndexes(name); !ok {
				item(op, name, id, http.StatusNotFound, "", errString("no such index ["+name+"] and [require_alias] request flag is [true] and ["+name+"] is not an alias"), "index_not_found_exception")
				continue
			}
		}
		if name, err = resolveWrite(name); err != nil {
			item(op, name, id, http.StatusBadRequest, "", err, "illegal_argument_exception")
			continue
		}
		if id == "" && op != "index" && op != "create" {
			item(op, name, id, http.StatusBadRequest, "", errString("id is missing"), "action_request_validation_exception")
			continue
		}
		if !seen[name] {
			seen[name] = true
			touched = append(touched, name)
		}
		key := docKey(name, id)
		// current returns the document as Elasticsearch would see it now.
		current := func() (map[string]any, bool) {
			if deleted[key] {
				return nil, false
			}
			if d, ok := pending[key]; ok {
				return d, true
			}
			return indexedSource(name, id)
		}

		idx, _, err := core.GetOrCreateIndex(name, "", 0)
		if err != nil {
			item(op, name, id, http.StatusInternalServerError, "", err, "exception")
			continue
		}

		if op == "delete" {
			if _, ok := pending[key]; ok {
				// ZincSearch can only delete documents already in the index.
				waitVisible(name)
			}
			if err := idx.DeleteDocument(id); err != nil {
				if err.Error() == "id not found" {
					item(op, name, id, http.StatusNotFound, "not_found", nil, "")
				} else {
					item(op, name, id, http.StatusInternalServerError, "", err, "exception")
				}
				continue
			}
			delete(pending, key)
			deleted[key] = true
			item(op, name, id, http.StatusOK, "deleted", nil, "")
			continue
		}

		var doc map[string]any
		result, status := "created", http.StatusCreated
		switch op {
		case "index", "create":
			// ZincSearch expects float64 numbers: decode without UseNumber.
			if err := json.Unmarshal(data, &doc); err != nil || doc == nil {
				item(op, name, id, http.StatusBadRequest, "", errString("failed to parse document: "+errText(err)), "document_parsing_exception")
				continue
			}
			if op == "create" && id != "" {
				if _, exists := current(); exists {
					item(op, name, id, http.StatusConflict, "", errString("["+id+"]: version conflict, document already exists (current version [1])"), "version_conflict_engine_exception")
					continue
				}
			}
		case "update":
			var u updateBody
			if err := json.Unmarshal(data, &u); err != nil || u.Script != nil {
				item(op, name, id, http.StatusBadRequest, "", errString("zincsearch stand-in: unsupported update (scripts are not supported)"), "illegal_argument_exception")
				continue
			}
			existing, found := current()
			var created, ok bool
			doc, created, ok = applyUpdate(existing, found, u)
			if !ok {
				item(op, name, id, http.StatusNotFound, "", errString("["+id+"]: document missing"), "document_missing_exception")
				continue
			}
			if !created {
				result, status = "updated", http.StatusOK
			}
		}
		update := id != ""
		if id == "" {
			id = ider.Generate()
			key = docKey(name, id)
		}
		if err := idx.CreateDocument(id, doc, update); err != nil {
			item(op, name, id, http.StatusBadRequest, "", err, "document_parsing_exception")
			continue
		}
		pending[key] = doc
		delete(deleted, key)
		item(op, name, id, status, result, nil, "")
	}

	c.Set("zs.indexes", touched)
	c.JSON(http.StatusOK, gin.H{"took": time.Since(start).Milliseconds(), "errors": anyErr, "items": items})
}

type errString string

func (e errString) Error() string { return string(e) }

func errText(err error) string {
	if err == nil {
		return "not a JSON object"
	}
	return err.Error()
}

// requireAlias reports whether an action must target an alias: its
// require_alias, or else the request's.
func requireAlias(c *gin.Context, meta map[string]any) bool {
	if v, ok := meta["require_alias"].(bool); ok {
		return v
	}
	v, ok := c.GetQuery("require_alias")
	return ok && v != "false"
}
