package groupcommit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chatsys/chat/internal/groupcommit"
)

// recorder is a commit that doubles its items, fails as a whole on an item
// below 0 (split or not), and remembers every commit.
type recorder struct {
	mu      sync.Mutex
	commits [][]int
	split   bool
	// inFlight and most count the commits running at once.
	inFlight, most int
}

var errBad = errors.New("bad item")

func (r *recorder) commit(_ context.Context, items []int) ([]int, error) {
	r.mu.Lock()
	r.inFlight++
	r.most = max(r.most, r.inFlight)
	r.commits = append(r.commits, append([]int(nil), items...))
	r.mu.Unlock()
	time.Sleep(time.Millisecond)
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
	out := make([]int, len(items))
	for i, v := range items {
		if v < 0 {
			if r.split {
				return nil, groupcommit.Split(errBad)
			}
			return nil, errBad
		}
		out[i] = 2 * v
	}
	return out, nil
}

func TestGroupsConcurrentCallers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxWeight int
		weigh     func(int) int
	}{
		{"by count", 8, nil},
		{"by weight", 40, func(v int) int { return v%10 + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			g := groupcommit.New(rec.commit, tc.weigh, tc.maxWeight)
			const callers, each = 32, 50
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						v := c*each + i
						got, err := g.Do(context.Background(), v)
						if err != nil || got != 2*v {
							t.Errorf("Do(%d) = %d, %v; want %d", v, got, err, 2*v)
						}
					}
				}()
			}
			wg.Wait()
			weigh := tc.weigh
			if weigh == nil {
				weigh = func(int) int { return 1 }
			}
			seen := map[int]int{}
			grouped := 0
			for _, items := range rec.commits {
				w := 0
				for _, v := range items {
					seen[v]++
					w += weigh(v)
				}
				if len(items) > 1 {
					grouped++
					if w > tc.maxWeight {
						t.Errorf("a commit of weight %d, over %d: %v", w, tc.maxWeight, items)
					}
				}
			}
			if len(seen) != callers*each {
				t.Errorf("%d items committed, want %d", len(seen), callers*each)
			}
			for v, n := range seen {
				if n != 1 {
					t.Errorf("item %d committed %d times", v, n)
				}
			}
			if rec.most > 1 {
				t.Errorf("%d commits ran at once; one at a time makes them larger", rec.most)
			}
			// 32 callers and 1 ms commits: callers arrive while others
			// commit, so most commits carry several items.
			if grouped < len(rec.commits)/2 {
				t.Errorf("%d of %d commits held more than one item", grouped, len(rec.commits))
			}
		})
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		// split marks the bad item's error as concerning it alone.
		split bool
		// wantCommits: the commits made after the first, by size.
		wantCommits []int
	}{
		{"split: the bad item fails alone", true, []int{5, 1, 1, 1, 1, 1}},
		{"not split: the group fails", false, []int{5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{split: tc.split}
			entered, release := make(chan struct{}), make(chan struct{})
			first := true
			commit := func(ctx context.Context, items []int) ([]int, error) {
				if first {
					// Hold the first commit until the others queue up
					// behind it, so that they share the next one.
					first = false
					close(entered)
					<-release
				}
				return rec.commit(ctx, items)
			}
			g := groupcommit.New(commit, nil, 100)
			firstDone := make(chan error)
			go func() {
				_, err := g.Do(context.Background(), 100)
				firstDone <- err
			}()
			<-entered
			items := []int{0, 1, -1, 4, 5}
			errs := make([]error, len(items))
			var wg sync.WaitGroup
			for i, v := range items {
				wg.Add(1)
				go func() { defer wg.Done(); _, errs[i] = g.Do(context.Background(), v) }()
			}
			time.Sleep(50 * time.Millisecond)
			close(release)
			wg.Wait()
			if err := <-firstDone; err != nil {
				t.Fatalf("first item: %v", err)
			}
			for i, v := range items {
				switch {
				case v < 0 && !errors.Is(errs[i], errBad):
					t.Errorf("bad item: err %v, want %v", errs[i], errBad)
				case v >= 0 && tc.split && errs[i] != nil:
					t.Errorf("item %d: %v; the bad item's failure should be its own", v, errs[i])
				case v >= 0 && !tc.split && !errors.Is(errs[i], errBad):
					t.Errorf("item %d: err %v; it shared the failed commit", v, errs[i])
				}
			}
			var sizes []int
			for _, c := range rec.commits[1:] {
				sizes = append(sizes, len(c))
			}
			if len(sizes) != len(tc.wantCommits) {
				t.Fatalf("commits after the first: sizes %v, want %v", sizes, tc.wantCommits)
			}
			for i := range sizes {
				if sizes[i] != tc.wantCommits[i] {
					t.Fatalf("commits after the first: sizes %v, want %v", sizes, tc.wantCommits)
				}
			}
		})
	}
}
