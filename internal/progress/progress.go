// Package progress shows how far a long task has got: a bar redrawn in
// place on a terminal, and otherwise a line of its own every few seconds,
// so that a log gets whole lines rather than one line of carriage returns.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is where a task stands.
type Report struct {
	Label       string
	Done, Total int64
	PerSecond   float64
	ETA         time.Duration
}

// Meter shows the reports of one task after another.
type Meter struct {
	w   io.Writer
	tty bool
	// Every is the least time between two lines when w is not a terminal.
	Every time.Duration
	// Line writes a report when w is not a terminal; by default a line of
	// text to w.
	Line    func(Report)
	now     func() time.Time
	label   string
	start   time.Time
	last    time.Time
	started int64
}

// New returns a meter that writes to w.
func New(w io.Writer) *Meter {
	m := &Meter{w: w, tty: IsTerminal(w), Every: 5 * time.Second, now: time.Now}
	m.Line = m.line
	return m
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update reports that a task has done done of total; a new label starts
// a new task, whose rate counts from there.
func (m *Meter) Update(label string, done, total int64) {
	now := m.now()
	if label != m.label {
		m.label, m.start, m.started = label, now, done
	}
	r := Report{Label: label, Done: done, Total: total}
	r.PerSecond = float64(done-m.started) / max(now.Sub(m.start).Seconds(), 0.001)
	if r.PerSecond > 0 {
		r.ETA = (time.Duration(float64(total-done)/r.PerSecond) * time.Second).Round(time.Second)
	}
	if m.tty {
		m.bar(r)
		return
	}
	if m.last.IsZero() || now.Sub(m.last) >= m.Every {
		m.last = now
		m.Line(r)
	}
}

// Done ends a task: the terminal's line is ended, and the next Update
// starts afresh.
func (m *Meter) Done() {
	if m.tty && m.label != "" {
		fmt.Fprintln(m.w)
	}
	m.label, m.last = "", time.Time{}
}

func (m *Meter) bar(r Report) {
	const width = 30
	total := max(r.Total, 1)
	filled := min(int(width*r.Done/total), width)
	fmt.Fprintf(m.w, "\r%-6s [%s%s] %3.0f%% %d/%d events  %.0f/s  ETA %s ",
		r.Label, strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		100*float64(r.Done)/float64(total), r.Done, r.Total, r.PerSecond, r.ETA)
}

func (m *Meter) line(r Report) {
	fmt.Fprintf(m.w, "%s: %d of %d events, %.0f/s, ETA %s\n", r.Label, r.Done, r.Total, r.PerSecond, r.ETA)
}
