package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/groupcommit"
	"github.com/chatsys/chat/redact"
	"github.com/chatsys/chat/searchindex"
)

// Search projects messages into the Elasticsearch index. Its checkpoint is
// stored in MySQL after each bulk request succeeded; re-applying a batch is
// harmless, because every document carries its stream version as an
// external version and an older or equal version is refused.
//
// A message has a document only once its create is applied, so that every
// document can be found and returned: an edit of a number whose create
// never landed is not indexed. A deleted message's document has no words. A document always holds the newest body up
// to the checkpoint, whatever the order in which the message's events were
// stored (an edit may be stored before its create).
type Search struct {
	es          *searchindex.Client
	index       *searchindex.Index
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
func NewSearch(es *searchindex.Client, namespace string, log *slog.Logger, reg prometheus.Registerer) *Search {
	names := catalog.New(namespace)
	index := searchindex.NewIndex(es, namespace)
	s := &Search{
		es:          es,
		index:       index,
		target:      index.Alias,
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
func (s *Search) Checkpoint(ctx context.Context, db *sql.DB, partition int) (int64, error) {
	if s.target == s.index.Alias {
		if err := s.index.Ensure(ctx); err != nil {
			return 0, err
		}
	}
	return s.checkpoints.Ensure(ctx, db, s.checkpoint, partition)
}

type pendingDoc struct {
	id        string
	stream    string
	partition int
	position  int64
	version   int64
	created   bool // the message's create is applied
	deleted   bool // the message's delete is in the batch or applied
	doc       searchindex.Document
}

// messageDoc is what an event says of a message's search document; ok is
// false for the events that say nothing of one. A type the fold does not
// know is an error rather than skipped unseen.
func messageDoc(ev events.Event) (d searchindex.Document, created, ok bool, err error) {
	switch ev := ev.(type) {
	case events.MessageCreated:
		return searchindex.Document{Token: ev.Token, ChatNumber: ev.ChatNumber, Number: ev.Number, Body: ev.Body}, true, true, nil
	case events.MessageEdited:
		return searchindex.Document{Token: ev.Token, ChatNumber: ev.ChatNumber, Number: ev.Number, Body: ev.Body}, false, true, nil
	case events.MessageDeleted:
		// A deleted message's document stays, without words, at the
		// delete's version: the index then refuses any older version of
		// it, and an empty body matches no search.
		return searchindex.Document{Token: ev.Token, ChatNumber: ev.ChatNumber, Number: ev.Number}, false, true, nil
	case events.ApplicationCreated, events.ApplicationRenamed, events.ChatCreated, events.ChatRenamed, events.ApplicationLimitsSet:
		return searchindex.Document{}, false, false, nil
	default:
		return searchindex.Document{}, false, false, fmt.Errorf("type %s is not handled by the search projection", ev.EventType())
	}
}

// Apply implements Projection: the documents of all the batches go in one
// series of bulk requests, then every partition's checkpoint moves in one
// transaction.
func (s *Search) Apply(ctx context.Context, db *sql.DB, batches [][]Event) error {
	batches, parts, err := distinct(batches)
	if err != nil || len(batches) == 0 {
		return err
	}
	docs := map[string]*pendingDoc{}
	var order []string
	for _, batch := range batches {
		ids, err := s.documents(ctx, db, batch, docs)
		if err != nil {
			return err
		}
		order = append(order, ids...)
	}
	if len(order) > 0 {
		if err := s.bulk(ctx, db, docs, order); err != nil {
			return err
		}
	}
	return s.advance(ctx, db, batches, parts)
}

// documents adds to docs the documents of one partition's batch, and
// returns the ids of those to index. A message's events are all in one
// partition, so no other batch holds its document.
func (s *Search) documents(ctx context.Context, db *sql.DB, batch []Event, docs map[string]*pendingDoc) ([]string, error) {
	part := batch[0].Partition
	// One document per message: the newest version in the batch.
	var order []string
	for _, e := range batch {
		d, created, ok, err := messageDoc(e.Event)
		if err != nil {
			return nil, groupcommit.Split(fmt.Errorf("partition %d: event at position %d: %w", part, e.Position, err))
		}
		if !ok {
			continue
		}
		id := searchindex.DocumentID(d.Token, d.ChatNumber, d.Number)
		p, ok := docs[id]
		if !ok {
			p = &pendingDoc{id: id, stream: e.Event.StreamID(), partition: part}
			docs[id] = p
			order = append(order, id)
		}
		p.created = p.created || created
		if _, ok := e.Event.(events.MessageDeleted); ok {
			p.deleted = true
		}
		if e.StreamVersion > p.version {
			p.version, p.position, p.doc = e.StreamVersion, e.Position, d
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	if err := s.complete(ctx, db, part, docs, order, batch[0].Position); err != nil {
		return nil, err
	}
	// A message whose create is not applied yet gets no document: it
	// could be counted but never returned. Its create will index it.
	indexed := order[:0]
	for _, id := range order {
		if d := docs[id]; d.created {
			// The log erases a deleted message's words; this keeps them
			// out of the index whatever the events it is handed say.
			if d.deleted {
				d.doc.Body = ""
			}
			d.doc.Body = searchindex.FoldAccents(d.doc.Body)
			indexed = append(indexed, id)
		}
	}
	return indexed, nil
}

// advance moves each partition's checkpoint past its batch, unless one no
// longer follows on from its batch: a replay put a rebuilt index live with
// its own positions meanwhile, and the runner must start again from there.
func (s *Search) advance(ctx context.Context, db *sql.DB, batches [][]Event, parts []int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	at, err := s.checkpoints.LockAll(ctx, tx, s.checkpoint, parts)
	if err != nil {
		return err
	}
	to := make(map[int]int64, len(batches))
	for _, batch := range batches {
		part := batch[0].Partition
		if pos := at[part]; pos < batch[0].Position-1 {
			return groupcommit.Split(fmt.Errorf("%w: partition %d at %d, batch from %d", ErrCheckpointMoved, part, pos, batch[0].Position))
		}
		to[part] = batch[len(batch)-1].Position
	}
	if err := s.checkpoints.AdvanceAll(ctx, tx, s.checkpoint, to); err != nil {
		return err
	}
	return tx.Commit()
}

// complete adds to the batch's documents what earlier batches applied to
// the same messages: whether the create was among them (usually it was, for
// an edit), and a newer version than the batch holds (an edit stored before
// its create, or edits stored out of order), whose body the document must
// keep. It looks the streams up by the unique (stream_id, stream_version)
// index; most messages of a batch are new, so most find nothing, and a
// payload is read only for the rare newer version.
func (s *Search) complete(ctx context.Context, db *sql.DB, partition int, docs map[string]*pendingDoc, order []string, before int64) error {
	byStream := make(map[string]*pendingDoc, len(order))
	newest := map[string]int64{}
	const chunk = 1000
	for start := 0; start < len(order); start += chunk {
		ids := order[start:min(start+chunk, len(order))]
		args := make([]any, 0, len(ids)+4)
		args = append(args, events.TypeMessageCreated, events.TypeMessageDeleted)
		for _, id := range ids {
			byStream[docs[id].stream] = docs[id]
			args = append(args, docs[id].stream)
		}
		args = append(args, partition, before)
		rows, err := db.QueryContext(ctx, "SELECT stream_id, stream_version, event_type = ?, event_type = ? FROM "+s.events+
			" WHERE stream_id IN (?"+strings.Repeat(",?", len(ids)-1)+") AND partition_id = ? AND position < ?", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				stream          string
				version         int64
				create, deletes bool
			)
			if err := rows.Scan(&stream, &version, &create, &deletes); err != nil {
				rows.Close()
				return err
			}
			d := byStream[stream]
			d.created = d.created || create
			d.deleted = d.deleted || deletes
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
		if err := s.load(ctx, db, byStream[stream], version); err != nil {
			return err
		}
	}
	return nil
}

// load sets the document to the message's body at a version stored
// earlier. What it finds wrong there is the partition's alone.
func (s *Search) load(ctx context.Context, db *sql.DB, d *pendingDoc, version int64) error {
	r := events.Record{StreamID: d.stream, StreamVersion: version}
	var pos int64
	err := db.QueryRowContext(ctx, "SELECT position, event_type, schema_version, payload FROM "+s.events+" WHERE stream_id = ? AND stream_version = ?",
		d.stream, version).Scan(&pos, &r.Type, &r.SchemaVersion, &r.Data)
	if errors.Is(err, sql.ErrNoRows) {
		err = groupcommit.Split(err)
	}
	if err != nil {
		return fmt.Errorf("read %s version %d: %w", redact.Tokens(d.stream), version, err)
	}
	env, err := s.codec.Decode(r)
	if err != nil {
		return groupcommit.Split(fmt.Errorf("partition %d: event at position %d: %w", d.partition, pos, err))
	}
	switch ev := env.Event.(type) {
	case events.MessageCreated:
		d.doc.Body = ev.Body
	case events.MessageEdited:
		d.doc.Body = ev.Body
	case events.MessageDeleted:
		d.doc.Body = ""
	default:
		return groupcommit.Split(fmt.Errorf("partition %d: event at position %d: a %s in message stream %s", d.partition, pos, r.Type, redact.Tokens(d.stream)))
	}
	d.version, d.position = version, pos
	return nil
}

// maxBulkBytes caps one bulk request's body. Elasticsearch refuses a body
// over http.max_content_length (100 MB) with 413, which retrying cannot cure,
// and advises bulk requests of a few MiB.
const maxBulkBytes = 4 << 20

// bulk indexes the documents, in as many requests as maxBulkBytes asks for.
// A refused older version (409) means the index holds that version or a
// newer one: done. An item that failed for a transient reason fails the
// Apply, to be retried; one that can never succeed is parked with its
// reason.
func (s *Search) bulk(ctx context.Context, db *sql.DB, docs map[string]*pendingDoc, order []string) error {
	var (
		b    searchindex.Bulk
		sent []*pendingDoc
	)
	for i, id := range order {
		d := docs[id]
		if err := b.Index(s.target, id, d.version, d.doc); err != nil {
			return groupcommit.Split(fmt.Errorf("partition %d: document %s: %w", d.partition, redact.Tokens(id), err))
		}
		sent = append(sent, d)
		if b.Len() >= s.bulkBytes || i == len(order)-1 {
			if err := s.send(ctx, db, docs, sent, &b); err != nil {
				return err
			}
			b.Reset()
			sent = sent[:0]
		}
	}
	return nil
}

// send makes one bulk request of the documents sent.
func (s *Search) send(ctx context.Context, db *sql.DB, docs map[string]*pendingDoc, sent []*pendingDoc, b *searchindex.Bulk) error {
	failed, err := s.es.Send(ctx, b, false)
	if err != nil {
		return err
	}
	var transient error
	for _, f := range failed {
		switch {
		case f.Status == http.StatusConflict:
		case f.Status == http.StatusTooManyRequests || f.Status >= 500:
			transient = fmt.Errorf("elasticsearch: bulk item %s: %d %s: %s", f.ID, f.Status, f.Type, f.Reason)
		default:
			if err := s.park(ctx, db, f, refused(f, docs, sent)); err != nil {
				return err
			}
		}
	}
	return transient
}

// refused returns the document of a failed bulk item: the one its id
// names, or else the one at its place in the request; nil if neither.
func refused(f searchindex.Failure, docs map[string]*pendingDoc, sent []*pendingDoc) *pendingDoc {
	if d := docs[f.ID]; d != nil {
		return d
	}
	if f.Item >= 0 && f.Item < len(sent) {
		return sent[f.Item]
	}
	return nil
}

// park records a document the index can never take, under its partition
// and the position of its event.
func (s *Search) park(ctx context.Context, db *sql.DB, f searchindex.Failure, d *pendingDoc) error {
	if d == nil {
		return fmt.Errorf("elasticsearch: bulk item %s: %d %s: a document not sent", redact.Tokens(f.ID), f.Status, f.Type)
	}
	reason := fmt.Sprintf("%d %s: %s", f.Status, f.Type, f.Reason)
	s.log.Error("parking a message the search index refused", "document_id", redact.Tokens(f.ID), "partition", d.partition, "position", d.position, "reason", redact.Tokens(reason))
	s.parkedCount.Inc()
	_, err := db.ExecContext(ctx, "INSERT IGNORE INTO "+s.parked+" (partition_id, position, document_id, reason) VALUES (?, ?, ?, ?)", d.partition, d.position, f.ID, reason)
	return err
}
