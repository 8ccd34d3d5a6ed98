package projections

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/redact"
)

// Search projects messages into the Elasticsearch index. Its checkpoint is
// stored in MySQL after each bulk request succeeded; re-applying a batch is
// harmless, because every document carries its stream version as an
// external version and an older or equal version is refused.
type Search struct {
	es          *elasticsearch.Client
	index       *Index
	target      string // the index or alias written to
	checkpoint  string // its row in the checkpoints table
	checkpoints string
	parked      string
	log         *slog.Logger
	parkedCount prometheus.Counter
	bulkBytes   int // maxBulkBytes; tests make it smaller
}

// NewSearch returns the search projection of a namespace.
func NewSearch(es *elasticsearch.Client, namespace string, log *slog.Logger, reg prometheus.Registerer) *Search {
	s := &Search{
		es:          es,
		index:       NewIndex(es, namespace),
		target:      NewIndex(es, namespace).Alias,
		checkpoint:  "search",
		checkpoints: mysqldb.Table(namespace, "checkpoints"),
		parked:      mysqldb.Table(namespace, "search_parked"),
		log:         log,
		bulkBytes:   maxBulkBytes,
		parkedCount: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_search_parked_total", Help: "Events the search projection could never index (see the search_parked table).",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.parkedCount)
	}
	return s
}

// Name implements Projection.
func (*Search) Name() string { return "search" }

// Checkpoint implements Projection. It also makes sure the index exists.
func (s *Search) Checkpoint(ctx context.Context, lock *mysqldb.Lock) (int64, error) {
	if s.target == s.index.Alias {
		if err := s.index.Ensure(ctx); err != nil {
			return 0, err
		}
	}
	if _, err := lock.Conn.ExecContext(ctx, "INSERT IGNORE INTO "+s.checkpoints+" (name, position) VALUES (?, 0)", s.checkpoint); err != nil {
		return 0, err
	}
	var pos int64
	err := lock.Conn.QueryRowContext(ctx, "SELECT position FROM "+s.checkpoints+" WHERE name = ?", s.checkpoint).Scan(&pos)
	return pos, err
}

// DocumentID is the id of a message's search document.
func DocumentID(token string, chat, number int64) string {
	return token + ":" + strconv.FormatInt(chat, 10) + ":" + strconv.FormatInt(number, 10)
}

type searchDoc struct {
	Token      string `json:"token"`
	ChatNumber int64  `json:"chat_number"`
	Number     int64  `json:"number"`
	Body       string `json:"body"`
}

type pendingDoc struct {
	id       string
	position int64
	version  int64
	doc      searchDoc
}

// Apply implements Projection.
func (s *Search) Apply(ctx context.Context, lock *mysqldb.Lock, batch []Event) error {
	// One document per message: the newest version in the batch.
	docs := map[string]*pendingDoc{}
	var order []string
	for _, e := range batch {
		var d searchDoc
		switch ev := e.Event.(type) {
		case events.MessageCreated:
			d = searchDoc{ev.Token, ev.ChatNumber, ev.Number, FoldAccents(ev.Body)}
		case events.MessageEdited:
			d = searchDoc{ev.Token, ev.ChatNumber, ev.Number, FoldAccents(ev.Body)}
		default:
			continue
		}
		id := DocumentID(d.Token, d.ChatNumber, d.Number)
		if p, ok := docs[id]; ok {
			if e.StreamVersion > p.version {
				p.version, p.position, p.doc = e.StreamVersion, e.Position, d
			}
			continue
		}
		docs[id] = &pendingDoc{id: id, position: e.Position, version: e.StreamVersion, doc: d}
		order = append(order, id)
	}
	if len(order) > 0 {
		if err := s.bulk(ctx, lock, docs, order); err != nil {
			return err
		}
	}
	_, err := lock.Conn.ExecContext(ctx, "UPDATE "+s.checkpoints+" SET position = GREATEST(position, ?), updated_at = UTC_TIMESTAMP(6) WHERE name = ?", batch[len(batch)-1].Position, s.checkpoint)
	return err
}

type bulkResponse struct {
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

// maxBulkBytes caps one bulk request's body. Elasticsearch refuses a body
// over http.max_content_length (100 MB) with 413, which retrying cannot cure,
// and advises bulk requests of a few MiB.
const maxBulkBytes = 4 << 20

// bulk indexes the documents, in as many requests as maxBulkBytes asks for.
// A refused older version (409) means the index holds that version or a
// newer one: done. An item that failed for a transient reason fails the
// batch, to be retried; one that can never succeed is parked with its reason.
func (s *Search) bulk(ctx context.Context, lock *mysqldb.Lock, docs map[string]*pendingDoc, order []string) error {
	var body bytes.Buffer
	enc := plainjson.NewEncoder(&body)
	for i, id := range order {
		d := docs[id]
		action := map[string]any{"index": map[string]any{"_index": s.target, "_id": id, "version": d.version, "version_type": "external"}}
		if err := enc.Encode(action); err != nil {
			return err
		}
		if err := enc.Encode(d.doc); err != nil {
			return err
		}
		if body.Len() >= s.bulkBytes || i == len(order)-1 {
			if err := s.send(ctx, lock, docs, &body); err != nil {
				return err
			}
			body.Reset()
		}
	}
	return nil
}

// send makes one bulk request.
func (s *Search) send(ctx context.Context, lock *mysqldb.Lock, docs map[string]*pendingDoc, body *bytes.Buffer) error {
	var out bulkResponse
	res, err := s.es.Bulk(body, s.es.Bulk.WithContext(ctx))
	if err := decode(res, err, "bulk", &out); err != nil {
		return err
	}
	if !out.Errors {
		return nil
	}
	var transient error
	for _, item := range out.Items {
		for _, r := range item {
			switch {
			case r.Error == nil || r.Status == http.StatusConflict:
			case r.Status == http.StatusTooManyRequests || r.Status >= 500:
				transient = fmt.Errorf("elasticsearch: bulk item %s: %d %s: %s", r.ID, r.Status, r.Error.Type, r.Error.Reason)
			default:
				d := docs[r.ID]
				reason := fmt.Sprintf("%d %s: %s", r.Status, r.Error.Type, r.Error.Reason)
				pos := int64(0)
				if d != nil {
					pos = d.position
				}
				s.log.Error("parking a message the search index refused", "document_id", redact.Tokens(r.ID), "position", pos, "reason", redact.Tokens(reason))
				s.parkedCount.Inc()
				if _, err := lock.Conn.ExecContext(ctx, "INSERT IGNORE INTO "+s.parked+" (position, document_id, reason) VALUES (?, ?, ?)", pos, r.ID, reason); err != nil {
					return err
				}
			}
		}
	}
	return transient
}
