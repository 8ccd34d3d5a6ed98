package projections

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/plainjson"
	"github.com/chatsys/chat/mysqldb"
	"github.com/chatsys/chat/redact"
)

// Search projects messages into the Elasticsearch index. Its checkpoint is
// stored in MySQL after each bulk request succeeded; re-applying a batch is
// harmless, because every document carries its stream version as an
// external version and an older or equal version is refused.
//
// A message has a document only once its create is applied, so that every
// document can be found and returned: an edit of a number whose create
// never landed is not indexed. A document always holds the newest body up
// to the checkpoint, whatever the order in which the message's events were
// stored (an edit may be stored before its create).
type Search struct {
	es          *elasticsearch.Client
	index       *Index
	target      string // the index or alias written to
	checkpoint  string // its name among the checkpoints
	checkpoints *checkpoint.Store
	parked      string
	events      string // the event store's table, for what earlier batches held
	codec       *events.Codec
	log         *slog.Logger
	parkedCount prometheus.Counter
	bulkBytes   int // maxBulkBytes; tests make it smaller
}

// NewSearch returns the search projection of a namespace.
func NewSearch(es *elasticsearch.Client, namespace string, log *slog.Logger, reg prometheus.Registerer) *Search {
	names := catalog.New(namespace)
	s := &Search{
		es:          es,
		index:       NewIndex(es, namespace),
		target:      NewIndex(es, namespace).Alias,
		checkpoint:  "search",
		checkpoints: checkpoint.New(namespace),
		parked:      names.SearchParked(),
		events:      names.Events(),
		codec:       events.NewCodec(),
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
	return s.checkpoints.Ensure(ctx, lock.Conn, s.checkpoint)
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
	stream   string
	position int64
	version  int64
	created  bool // the message's create is applied
	doc      searchDoc
}

// messageDoc is what an event says of a message's search document; ok is
// false for the events that say nothing of one. A type the fold does not
// know is an error rather than skipped unseen.
func messageDoc(ev events.Event) (d searchDoc, created, ok bool, err error) {
	switch ev := ev.(type) {
	case events.MessageCreated:
		return searchDoc{ev.Token, ev.ChatNumber, ev.Number, ev.Body}, true, true, nil
	case events.MessageEdited:
		return searchDoc{ev.Token, ev.ChatNumber, ev.Number, ev.Body}, false, true, nil
	case events.ApplicationCreated, events.ApplicationRenamed, events.ChatCreated, events.ChatRenamed:
		return searchDoc{}, false, false, nil
	default:
		return searchDoc{}, false, false, fmt.Errorf("type %s is not handled by the search projection", ev.EventType())
	}
}

// Apply implements Projection.
func (s *Search) Apply(ctx context.Context, lock *mysqldb.Lock, batch []Event) error {
	// One document per message: the newest version in the batch.
	docs := map[string]*pendingDoc{}
	var order []string
	for _, e := range batch {
		d, created, ok, err := messageDoc(e.Event)
		if err != nil {
			return fmt.Errorf("event at position %d: %w", e.Position, err)
		}
		if !ok {
			continue
		}
		id := DocumentID(d.Token, d.ChatNumber, d.Number)
		p, ok := docs[id]
		if !ok {
			p = &pendingDoc{id: id, stream: e.Event.StreamID()}
			docs[id] = p
			order = append(order, id)
		}
		p.created = p.created || created
		if e.StreamVersion > p.version {
			p.version, p.position, p.doc = e.StreamVersion, e.Position, d
		}
	}
	if len(order) > 0 {
		if err := s.complete(ctx, lock, docs, order, batch[0].Position); err != nil {
			return err
		}
		// A message whose create is not applied yet gets no document: it
		// could be counted but never returned. Its create will index it.
		indexed := order[:0]
		for _, id := range order {
			if d := docs[id]; d.created {
				d.doc.Body = FoldAccents(d.doc.Body)
				indexed = append(indexed, id)
			}
		}
		order = indexed
	}
	if len(order) > 0 {
		if err := s.bulk(ctx, lock, docs, order); err != nil {
			return err
		}
	}
	return s.checkpoints.Advance(ctx, lock.Conn, s.checkpoint, batch[len(batch)-1].Position)
}

// complete adds to the batch's documents what earlier batches applied to
// the same messages: whether the create was among them (usually it was, for
// an edit), and a newer version than the batch holds (an edit stored before
// its create, or edits stored out of order), whose body the document must
// keep. It looks the streams up by the unique (stream_id, stream_version)
// index; most messages of a batch are new, so most find nothing, and a
// payload is read only for the rare newer version.
func (s *Search) complete(ctx context.Context, lock *mysqldb.Lock, docs map[string]*pendingDoc, order []string, before int64) error {
	byStream := make(map[string]*pendingDoc, len(order))
	newest := map[string]int64{}
	const chunk = 1000
	for start := 0; start < len(order); start += chunk {
		ids := order[start:min(start+chunk, len(order))]
		args := make([]any, 0, len(ids)+2)
		args = append(args, events.TypeMessageCreated)
		for _, id := range ids {
			byStream[docs[id].stream] = docs[id]
			args = append(args, docs[id].stream)
		}
		args = append(args, before)
		rows, err := lock.Conn.QueryContext(ctx, "SELECT stream_id, stream_version, event_type = ? FROM "+s.events+
			" WHERE stream_id IN (?"+strings.Repeat(",?", len(ids)-1)+") AND position < ?", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				stream  string
				version int64
				create  bool
			)
			if err := rows.Scan(&stream, &version, &create); err != nil {
				rows.Close()
				return err
			}
			d := byStream[stream]
			d.created = d.created || create
			if version > d.version && version > newest[stream] {
				newest[stream] = version
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for stream, version := range newest {
		if err := s.load(ctx, lock, byStream[stream], version); err != nil {
			return err
		}
	}
	return nil
}

// load sets the document to the message's body at a version stored earlier.
func (s *Search) load(ctx context.Context, lock *mysqldb.Lock, d *pendingDoc, version int64) error {
	r := events.Record{StreamID: d.stream, StreamVersion: version}
	var pos int64
	err := lock.Conn.QueryRowContext(ctx, "SELECT position, event_type, schema_version, payload FROM "+s.events+" WHERE stream_id = ? AND stream_version = ?",
		d.stream, version).Scan(&pos, &r.Type, &r.SchemaVersion, &r.Data)
	if err != nil {
		return fmt.Errorf("read %s version %d: %w", redact.Tokens(d.stream), version, err)
	}
	env, err := s.codec.Decode(r)
	if err != nil {
		return fmt.Errorf("event at position %d: %w", pos, err)
	}
	switch ev := env.Event.(type) {
	case events.MessageCreated:
		d.doc.Body = ev.Body
	case events.MessageEdited:
		d.doc.Body = ev.Body
	default:
		return fmt.Errorf("event at position %d: a %s in message stream %s", pos, r.Type, redact.Tokens(d.stream))
	}
	d.version, d.position = version, pos
	return nil
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
