package progress

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestMeter writes the same reports to a terminal and to anything else:
// a bar redrawn in place there, whole lines at most every Every here.
func TestMeter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tty  bool
		want []string
	}{
		{"terminal", true, []string{
			"\rappend [..............................]   0% 0/100 events  0/s  ETA 0s ",
			"\rappend [##############################] 100% 100/100 events  10/s  ETA 0s \n",
		}},
		{"log", false, []string{
			"append: 0 of 100 events, 0/s, ETA 0s\n",
			"append: 60 of 100 events, 10/s, ETA 4s\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			m := New(&out)
			m.tty, m.now = tc.tty, func() time.Time { return at }
			for _, step := range []struct {
				after time.Duration
				done  int64
			}{{0, 0}, {time.Second, 10}, {6 * time.Second, 60}, {8 * time.Second, 80}, {10 * time.Second, 100}} {
				at = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(step.after)
				m.Update("append", step.done, 100)
			}
			m.Done()
			got := out.String()
			if !strings.HasPrefix(got, tc.want[0]) || !strings.HasSuffix(got, tc.want[1]) {
				t.Errorf("output %q, want it to start with %q and end with %q", got, tc.want[0], tc.want[1])
			}
			if !tc.tty && (strings.Contains(got, "\r") || strings.Count(got, "\n") != 2) {
				t.Errorf("not two whole lines: %q", got)
			}
		})
	}
}

// TestIsTerminal: a file or a pipe is not a terminal.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, out := range []*os.File{f, w} {
		if IsTerminal(out) {
			t.Errorf("%s is taken for a terminal", out.Name())
		}
	}
	if IsTerminal(&strings.Builder{}) {
		t.Error("a strings.Builder is taken for a terminal")
	}
}
