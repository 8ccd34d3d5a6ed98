package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/checkpoint"
	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/eventstore"
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
	db          *sql.DB
	checkpoint  string // its name among the checkpoints
	checkpoints *checkpoint.Store
	parked      string
	store       *eventstore.Store // for what earlier batches held
	codec       *events.Codec
	log         *slog.Logger
	parkedCount prometheus.Counter
	bulkBytes   int // maxBulkBytes; tests make it smaller
	// ensured is set once the alias is known to exist, and cleared when
	// the index refuses a write for a reason of its own (missing, say).
	ensured atomic.Bool
}

// SearchConfig is what the search projection writes to and reads from.
type SearchConfig struct {
	Index *searchindex.Client
	// DB holds the projection's checkpoints and the events the index
	// refused (<ns>_search_parked).
	DB *sql.DB
	// Store is the event log, where the projection reads what earlier
	// batches held of the messages of a batch.
	Store      *eventstore.Store
	Namespace  string
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// NewSearch returns the search projection of a namespace.
func NewSearch(cfg SearchConfig) *Search {
	index := searchindex.NewIndex(cfg.Index, cfg.Namespace)
	s := &Search{
		es:          cfg.Index,
		index:       index,
		target:      index.Alias,
		db:          cfg.DB,
		checkpoint:  "search",
		checkpoints: checkpoint.New(cfg.Namespace),
		parked:      catalog.New(cfg.Namespace).SearchParked(),
		store:       cfg.Store,
		codec:       events.NewCodec(),
		log:         cfg.Log,
		bulkBytes:   maxBulkBytes,
		parkedCount: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_search_parked_total", Help: "Events the search projection could never index (see the search_parked table).",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.parkedCount)
	}
	return s
}

// Name implements Projection.
func (*Search) Name() string { return "search" }

// Checkpoint implements Projection. It also makes sure the index exists:
// the first time, and after the index refused a write for a reason of its
// own. Not every time: an idle runner reads its checkpoint every few
// seconds, and a look at the alias during a replay's swap is a look at
// what the swap is changing.
func (s *Search) Checkpoint(ctx context.Context, partition int) (int64, error) {
	if s.target == s.index.Alias && !s.ensured.Load() {
		if err := s.index.Ensure(ctx); err != nil {
			return 0, err
		}
		s.ensured.Store(true)
	}
	return s.checkpoints.Ensure(ctx, s.db, s.checkpoint, partition)
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
func (s *Search) Apply(ctx context.Context, batches [][]Event) error {
	batches, parts, err := distinct(batches)
	if err != nil || len(batches) == 0 {
		return err
	}
	docs := map[string]*pendingDoc{}
	var order []string
	for _, batch := range batches {
		ids, err := s.documents(ctx, batch, docs)
		if err != nil {
			return err
		}
		order = append(order, ids...)
	}
	if len(order) > 0 {
		if err := s.bulk(ctx, docs, order); err != nil {
			return err
		}
	}
	return s.advance(ctx, batches, parts)
}

// documents adds to docs the documents of one partition's batch, and
// returns the ids of those to index. A message's events are all in one
// partition, so no other batch holds its document.
func (s *Search) documents(ctx context.Context, batch []Event, docs map[string]*pendingDoc) ([]string, error) {
	part := batch[0].Partition
	// One document per message: the newest version in the batch.
	var order []string
	for _, e := range batch {
		d, created, ok, err := messageDoc(e.Event)
		if err != nil {
			return nil, ofBatch(fmt.Errorf("partition %d: event at position %d: %w", part, e.Position, err))
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
	if err := s.complete(ctx, part, docs, order, batch[0].Position); err != nil {
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
func (s *Search) advance(ctx context.Context, batches [][]Event, parts []int) error {
	tx, err := s.db.BeginTx(ctx, nil)
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
			return ofBatch(fmt.Errorf("%w: partition %d at %d, batch from %d", ErrCheckpointMoved, part, pos, batch[0].Position))
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
// keep. Most messages of a batch are new, so most find nothing, and a
// payload is read only for the rare newer version.
func (s *Search) complete(ctx context.Context, partition int, docs map[string]*pendingDoc, order []string, before int64) error {
	byStream := make(map[string]*pendingDoc, len(order))
	streams := make([]string, len(order))
	for i, id := range order {
		streams[i] = docs[id].stream
		byStream[docs[id].stream] = docs[id]
	}
	newest := map[string]int64{}
	err := s.store.Versions(ctx, partition, before, streams, func(v eventstore.StreamVersion) error {
		d := byStream[v.StreamID]
		d.created = d.created || v.Type == events.TypeMessageCreated
		d.deleted = d.deleted || v.Type == events.TypeMessageDeleted
		if v.Version > d.version && v.Version > newest[v.StreamID] {
			newest[v.StreamID] = v.Version
		}
		return nil
	})
	if err != nil {
		return err
	}
	for stream, version := range newest {
		if err := s.load(ctx, byStream[stream], version); err != nil {
			return err
		}
	}
	return nil
}

// load sets the document to the message's body at a version stored
// earlier. What it finds wrong there is the partition's alone.
func (s *Search) load(ctx context.Context, d *pendingDoc, version int64) error {
	st, err := s.store.Version(ctx, d.stream, version)
	if errors.Is(err, sql.ErrNoRows) {
		err = ofBatch(err)
	}
	if err != nil {
		return fmt.Errorf("read %s version %d: %w", redact.Tokens(d.stream), version, err)
	}
	env, err := s.codec.Decode(st.Record)
	if err != nil {
		return ofBatch(fmt.Errorf("partition %d: event at position %d: %w", d.partition, st.Position, err))
	}
	switch ev := env.Event.(type) {
	case events.MessageCreated:
		d.doc.Body = ev.Body
	case events.MessageEdited:
		d.doc.Body = ev.Body
	case events.MessageDeleted:
		d.doc.Body = ""
	default:
		return ofBatch(fmt.Errorf("partition %d: event at position %d: a %s in message stream %s", d.partition, st.Position, st.Type, redact.Tokens(d.stream)))
	}
	d.version, d.position = version, st.Position
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
func (s *Search) bulk(ctx context.Context, docs map[string]*pendingDoc, order []string) error {
	var (
		b    = searchindex.Bulk{ViaAlias: s.target == s.index.Alias}
		sent []*pendingDoc
	)
	for i, id := range order {
		d := docs[id]
		if err := b.Index(s.target, id, d.version, d.doc); err != nil {
			return ofBatch(fmt.Errorf("partition %d: document %s: %w", d.partition, redact.Tokens(id), err))
		}
		sent = append(sent, d)
		if b.Len() >= s.bulkBytes || i == len(order)-1 {
			if err := s.send(ctx, docs, sent, &b); err != nil {
				return err
			}
			b.Reset()
			sent = sent[:0]
		}
	}
	return nil
}

// send makes one bulk request of the documents sent.
func (s *Search) send(ctx context.Context, docs map[string]*pendingDoc, sent []*pendingDoc, b *searchindex.Bulk) error {
	failed, err := s.es.Send(ctx, b, false)
	if err != nil {
		return err
	}
	var transient error
	for _, f := range failed {
		switch {
		case f.Status == http.StatusConflict:
		case passing(f):
			transient = fmt.Errorf("elasticsearch: bulk item %s: %d %s: %s", f.ID, f.Status, f.Type, f.Reason)
			if f.Status < 500 && f.Status != http.StatusTooManyRequests {
				s.ensured.Store(false) // the index or its alias: look again
			}
		default:
			if err := s.park(ctx, f, refused(f, docs, sent)); err != nil {
				return err
			}
		}
	}
	return transient
}

// passing reports whether a bulk item failed for a reason of the cluster or
// the index rather than of the document, which a retry may find gone: the
// cluster busy (429) or failing (5xx), the index made read-only (at the
// disk's flood stage), closed or missing, or its alias without a write
// index while it moves. Parking the document then would leave it out of
// search for good; retrying holds the projection back, lag showing, until
// the index takes it.
func passing(f searchindex.Failure) bool {
	switch {
	case f.Status == http.StatusTooManyRequests || f.Status >= 500:
		return true
	case f.Type == "cluster_block_exception", f.Type == "index_closed_exception", f.Type == "index_not_found_exception":
		return true
	case f.Type == "illegal_argument_exception" && strings.Contains(f.Reason, "write index"):
		return true
	}
	return false
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
func (s *Search) park(ctx context.Context, f searchindex.Failure, d *pendingDoc) error {
	if d == nil {
		return fmt.Errorf("elasticsearch: bulk item %s: %d %s: a document not sent", redact.Tokens(f.ID), f.Status, f.Type)
	}
	reason := fmt.Sprintf("%d %s: %s", f.Status, f.Type, f.Reason)
	s.log.Error("parking a message the search index refused", "document_id", redact.Tokens(f.ID), "partition", d.partition, "position", d.position, "reason", redact.Tokens(reason))
	s.parkedCount.Inc()
	_, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO "+s.parked+" (partition_id, position, document_id, reason) VALUES (?, ?, ?, ?)", d.partition, d.position, f.ID, reason)
	return err
}
