package readmodel_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatsys/chat/events"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/projections"
	"github.com/chatsys/chat/readmodel"
)

// TestPagesReadInSlices: a page is read a slice of numbers at a time; the
// items come out in order across slices, numbers never created are left
// out, and pages past the last number read nothing.
func TestPagesReadInSlices(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	db := testenv.DB(t, cfg)
	ctx := context.Background()
	const token, last = "abcdefghijklmnopqrstuvwxyz", 100
	gaps := []int64{40, 70} // creates that failed
	var batch []projections.Event
	add := func(ev events.Event) {
		batch = append(batch, projections.Event{Position: int64(len(batch) + 1), Envelope: events.Envelope{
			EventID: uuid.New(), StreamVersion: 1, OccurredAt: time.Now(), Event: ev,
		}})
	}
	add(events.ApplicationCreated{Token: token, Name: "a"})
	add(events.ChatCreated{Token: token, Number: 1, Name: "c"})
	var all []int64
	for n := int64(1); n <= last; n++ {
		if !slices.Contains(gaps, n) {
			add(events.MessageCreated{Token: token, ChatNumber: 1, Number: n, Body: fmt.Sprint("m", n)})
			all = append(all, n)
		}
	}
	if err := projections.NewMySQL(db, cfg.Namespace).Apply(ctx, [][]projections.Event{batch}); err != nil {
		t.Fatal(err)
	}
	q := readmodel.NewQueries(db, cfg.Namespace)

	between := func(lo, hi int64) []int64 {
		out := []int64{}
		for _, n := range all {
			if n >= lo && n <= hi {
				out = append(out, n)
			}
		}
		return out
	}
	numbers := func(t *testing.T, l readmodel.List[readmodel.Message]) []int64 {
		t.Helper()
		items, err := l.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, m := range items {
			if m.Body != fmt.Sprint("m", m.Number) || m.ChatNumber != 1 {
				t.Errorf("message %d reads %+v", m.Number, m)
			}
			out = append(out, m.Number)
		}
		return out
	}
	pages := []struct {
		page, perPage int64
		want          []int64
	}{
		{1, 1000, all},
		{1, 100, all},
		{2, 33, between(34, 66)},
		{4, 33, between(100, 100)},
		{3, 50, between(101, 150)},
		{1, 1, between(1, 1)},
	}
	for _, tc := range pages {
		t.Run(fmt.Sprintf("page %d of %d", tc.page, tc.perPage), func(t *testing.T) {
			l, err := q.Messages(ctx, token, 1, readmodel.Page{Number: tc.page, PerPage: tc.perPage})
			if err != nil {
				t.Fatal(err)
			}
			if l.Total != int64(len(all)) || l.Last != last {
				t.Errorf("Total %d, Last %d; want %d, %d", l.Total, l.Last, len(all), last)
			}
			if got := numbers(t, l); !slices.Equal(got, tc.want) {
				t.Errorf("numbers %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("by number, in the order given", func(t *testing.T) {
		var order []int64
		for n := int64(last); n >= 1; n -= 3 { // 100, 97, … across several slices, gaps included
			order = append(order, n)
		}
		order = append(order, 40, 2, 1000)
		var want []int64
		for _, n := range order {
			if slices.Contains(all, n) {
				want = append(want, n)
			}
		}
		if got := numbers(t, readmodel.MessagesByNumber(q, token, 1, order)); !slices.Equal(got, want) {
			t.Errorf("numbers %v, want %v", got, want)
		}
	})
}
