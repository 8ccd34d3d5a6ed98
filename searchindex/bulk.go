package searchindex

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/chatsys/chat/internal/plainjson"
)

// Document is a message as the index holds it. Body is folded (FoldAccents).
type Document struct {
	Token      string `json:"token"`
	ChatNumber int64  `json:"chat_number"`
	Number     int64  `json:"number"`
	Body       string `json:"body"`
}

// DocumentID is the id of a message's document.
func DocumentID(token string, chat, number int64) string {
	return token + ":" + strconv.FormatInt(chat, 10) + ":" + strconv.FormatInt(number, 10)
}

// Bulk is the body of a bulk request: documents to index, written without
// HTML escapes.
type Bulk struct {
	// ViaAlias makes every document's target have to be an alias: a write
	// through an alias that is missing then fails (404
	// index_not_found_exception) instead of creating an index of the
	// alias's name, which would take the alias's place for good.
	ViaAlias bool

	buf bytes.Buffer
	enc *json.Encoder
}

// Index adds a document to index into index (an alias or a version). A
// version above 0 is an external version: the cluster refuses it (409)
// when it holds that version or a newer one.
func (b *Bulk) Index(index, id string, version int64, doc Document) error {
	if b.enc == nil {
		b.enc = plainjson.NewEncoder(&b.buf)
	}
	meta := map[string]any{"_index": index, "_id": id}
	if b.ViaAlias {
		meta["require_alias"] = true
	}
	if version > 0 {
		meta["version"], meta["version_type"] = version, "external"
	}
	if err := b.enc.Encode(map[string]any{"index": meta}); err != nil {
		return err
	}
	return b.enc.Encode(doc)
}

// Len is the body's size in bytes.
func (b *Bulk) Len() int { return b.buf.Len() }

// Reset empties the body.
func (b *Bulk) Reset() { b.buf.Reset() }

// Failure is a document of a bulk request the cluster did not index.
type Failure struct {
	ID string
	// Item is its place among the request's documents, from 0.
	Item   int
	Status int
	Type   string
	Reason string
}

// Send makes a bulk request of b and returns the documents that failed; b
// is left as it is. With refresh, the answer waits until the documents are
// searchable.
func (c *Client) Send(ctx context.Context, b *Bulk, refresh bool) ([]Failure, error) {
	opts := []func(*esapi.BulkRequest){c.es.Bulk.WithContext(ctx)}
	if refresh {
		opts = append(opts, c.es.Bulk.WithRefresh("wait_for"))
	}
	var out struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Status int    `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	res, err := c.es.Bulk(bytes.NewReader(b.buf.Bytes()), opts...)
	if err := answer("bulk", res, err, &out); err != nil {
		return nil, err
	}
	if !out.Errors {
		return nil, nil
	}
	var failed []Failure
	for i, item := range out.Items {
		for _, r := range item {
			if r.Error != nil {
				failed = append(failed, Failure{ID: r.ID, Item: i, Status: r.Status, Type: r.Error.Type, Reason: r.Error.Reason})
			}
		}
	}
	return failed, nil
}
