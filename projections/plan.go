package projections

import (
	"fmt"

	"github.com/chatsys/chat/events"
)

// plan is the events of the batches applied at once, turned into a few
// multi-row statements.
type plan struct {
	apps    []row // token, name, version, created_at, updated_at
	chats   []row // token, number, name, version, created_at, updated_at
	creates []row // token, chat_number, number, body, version, created_at, updated_at, position
	edits   []row // the same columns
	deletes []deletion
	// Counts are summed per parent so the batches make one statement per
	// table.
	appCounts  map[string]*count
	chatCounts map[chatKey]*count
}

type row []any

type count struct {
	n    int64
	last int64
}

type chatKey struct {
	token  string
	number int64
}

// addBatch folds into the plan the events of a partition's batch that its
// position pos has not passed, and returns the position the batch moves it
// to, or 0 when the position has passed the whole batch. A batch that does
// not follow on from pos is refused.
func (p *plan) addBatch(batch []Event, pos int64) (int64, error) {
	part, last := batch[0].Partition, batch[len(batch)-1].Position
	if last <= pos {
		return 0, nil // applied already
	}
	if batch[0].Position > pos+1 {
		return 0, ofBatch(fmt.Errorf("%w: partition %d at %d, batch from %d", ErrCheckpointMoved, part, pos, batch[0].Position))
	}
	for _, e := range batch {
		if e.Position <= pos {
			continue
		}
		if err := p.add(e); err != nil {
			return 0, ofBatch(fmt.Errorf("partition %d: %w", part, err))
		}
	}
	return last, nil
}

// add folds one event into the plan. An event type the fold does not know
// stops it: skipping would leave the tables silently wrong.
func (p *plan) add(e Event) error {
	at := e.OccurredAt
	// created_at is only known from a create; NULL leaves it to that event.
	var created any
	switch ev := e.Event.(type) {
	case events.ApplicationCreated:
		created = at
		p.apps = append(p.apps, row{ev.Token, ev.Name, e.StreamVersion, created, at})
	case events.ApplicationRenamed:
		p.apps = append(p.apps, row{ev.Token, ev.Name, e.StreamVersion, created, at})
	case events.ChatCreated:
		created = at
		p.chats = append(p.chats, row{ev.Token, ev.Number, ev.Name, e.StreamVersion, created, at})
		p.countApp(ev.Token, ev.Number)
	case events.ChatRenamed:
		p.chats = append(p.chats, row{ev.Token, ev.Number, ev.Name, e.StreamVersion, created, at})
	case events.MessageCreated:
		created = at
		p.creates = append(p.creates, row{ev.Token, ev.ChatNumber, ev.Number, ev.Body, e.StreamVersion, created, at, e.Position})
		p.countChat(chatKey{ev.Token, ev.ChatNumber}, ev.Number, 1)
	case events.MessageEdited:
		p.edits = append(p.edits, row{ev.Token, ev.ChatNumber, ev.Number, ev.Body, e.StreamVersion, created, at, e.Position})
	case events.MessageDeleted:
		p.deletes = append(p.deletes, deletion{ev.Token, ev.ChatNumber, ev.Number, e.StreamVersion, at, e.Position})
	case events.ApplicationLimitsSet:
		// Rate limits are the command side's; the read tables show none.
	default:
		return fmt.Errorf("event at position %d: type %s is not handled by the MySQL projection", e.Position, e.Event.EventType())
	}
	return nil
}

func (p *plan) countApp(token string, number int64) {
	if p.appCounts == nil {
		p.appCounts = map[string]*count{}
	}
	c := p.appCounts[token]
	if c == nil {
		c = &count{}
		p.appCounts[token] = c
	}
	c.n++
	c.last = max(c.last, number)
}

func (p *plan) countChat(k chatKey, number, n int64) {
	if p.chatCounts == nil {
		p.chatCounts = map[chatKey]*count{}
	}
	c := p.chatCounts[k]
	if c == nil {
		c = &count{}
		p.chatCounts[k] = c
	}
	c.n += n
	c.last = max(c.last, number)
}

func (p *plan) appCountRows() []row {
	rows := make([]row, 0, len(p.appCounts))
	for token, c := range p.appCounts {
		rows = append(rows, row{token, c.n, c.last})
	}
	return rows
}

// chatCountRows returns the chats' counts that go up (or stay) and those
// that go down, whose rows hold what they take off.
func (p *plan) chatCountRows() (added, taken []row) {
	for k, c := range p.chatCounts {
		if c.n >= 0 {
			added = append(added, row{k.token, k.number, c.n, c.last})
		} else {
			taken = append(taken, row{k.token, k.number, -c.n, c.last})
		}
	}
	return added, taken
}
