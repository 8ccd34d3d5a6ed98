package projections_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/searchindex"
)

// TestBatchMustFollowCheckpoint: a projection applies a partition's batch
// only when it follows on from the partition's checkpoint. A batch from
// further on (a runner that read past a position a replay swapped in) is
// refused with ErrCheckpointMoved and moves nothing; one that overlaps is
// applied from the checkpoint on.
func TestBatchMustFollowCheckpoint(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	es, err := searchindex.Open(searchindex.Config{URL: cfg.ElasticsearchURL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const token, part = "abcdefghijklmnopqrstuvwxyz", 2
	envs := history(token)
	batch := func(from, to int) []projections.Event {
		var out []projections.Event
		for pos := from; pos <= to; pos++ {
			out = append(out, projections.Event{Partition: part, Position: int64(pos), Envelope: envs[pos-1]})
		}
		return out
	}
	for _, p := range []projections.Projection{
		projections.NewMySQL(db, cfg.Namespace),
		newSearch(es, db, cfg.Namespace, testenv.Logger(t, slog.LevelWarn)),
	} {
		t.Run(p.Name(), func(t *testing.T) {
			at := func(want int64) {
				t.Helper()
				if pos, err := p.Checkpoint(ctx, part); err != nil || pos != want {
					t.Fatalf("checkpoint %d, %v; want %d", pos, err, want)
				}
			}
			at(0)
			steps := []struct {
				name     string
				from, to int
				moved    bool
				at       int64
			}{
				{"the first batch", 1, 4, false, 4},
				{"a batch beyond the checkpoint", 7, 9, true, 4},
				{"a batch that overlaps", 3, 6, false, 6},
				{"a batch applied already", 2, 5, false, 6},
				{"the next batch", 7, len(envs), false, int64(len(envs))},
			}
			for _, s := range steps {
				err := p.Apply(ctx, [][]projections.Event{batch(s.from, s.to)})
				if moved := errors.Is(err, projections.ErrCheckpointMoved); moved != s.moved || (err != nil && !moved) {
					t.Fatalf("%s: %v, want moved %v", s.name, err, s.moved)
				}
				at(s.at)
			}
		})
	}
}
