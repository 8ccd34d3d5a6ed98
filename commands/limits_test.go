package commands_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/chatsys/chat/apperr"
	"github.com/chatsys/chat/commands"
	"github.com/chatsys/chat/events"
)

type fakeOverrides struct{ got []commands.Override }

func (f *fakeOverrides) SetOverride(_ context.Context, o commands.Override) error {
	f.got = append(f.got, o)
	return nil
}

func n(v int64) *int64 { return &v }

// TestSetApplicationLimits: an override is published on the application's
// stream with its next version and recorded once confirmed; bad values,
// an unknown application or a broker known to be down publish nothing.
func TestSetApplicationLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cmd      commands.SetApplicationLimits
		down     bool
		wantKind apperr.Kind
		wantSlug string
		wantData string
	}{
		{name: "rates and burst", cmd: commands.SetApplicationLimits{Token: app, Commands: n(50), Reads: n(0), Burst: n(2)},
			wantData: `{"token":"` + app + `","commands":50,"reads":0,"burst":2}`},
		{name: "back to the defaults", cmd: commands.SetApplicationLimits{Token: app},
			wantData: `{"token":"` + app + `","commands":null,"reads":null,"burst":null}`},
		{name: "negative rate", cmd: commands.SetApplicationLimits{Token: app, Commands: n(-1)}, wantKind: apperr.KindValidation, wantSlug: "validation_failed"},
		{name: "burst of 0", cmd: commands.SetApplicationLimits{Token: app, Burst: n(0)}, wantKind: apperr.KindValidation, wantSlug: "validation_failed"},
		{name: "unknown application", cmd: commands.SetApplicationLimits{Token: nobody, Commands: n(1)}, wantKind: apperr.KindNotFound, wantSlug: "not_found"},
		{name: "broker down", cmd: commands.SetApplicationLimits{Token: app, Commands: n(1)}, down: true, wantKind: apperr.KindUnavailable, wantSlug: "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig()
			over := &fakeOverrides{}
			r.h = commands.New(commands.Config{Numbering: r.nums, Keys: r.keys, Publisher: r.pub, Overrides: over})
			r.pub.down = tc.down
			got, err := r.h.SetApplicationLimits(context.Background(), tc.cmd)
			if tc.wantSlug != "" {
				if e := apperr.As(err); e == nil || e.Kind != tc.wantKind || e.Slug != tc.wantSlug {
					t.Fatalf("error %v; want %s", err, tc.wantSlug)
				}
				if len(r.pub.sent()) != 0 || len(over.got) != 0 {
					t.Fatalf("a refused override was published (%d) or recorded (%v)", len(r.pub.sent()), over.got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sent := r.pub.sent()
			if len(sent) != 1 || sent[0].Type != events.TypeApplicationLimitsSet || sent[0].StreamID != events.ApplicationStream(app) || sent[0].StreamVersion != 2 {
				t.Fatalf("published %+v; want one ApplicationLimitsSet, version 2 of the application", sent)
			}
			if !json.Valid(sent[0].Data) || string(sent[0].Data) != tc.wantData {
				t.Errorf("payload %s, want %s", sent[0].Data, tc.wantData)
			}
			if len(over.got) != 1 || over.got[0].Version != 2 || over.got[0] != got {
				t.Errorf("recorded %+v, answered %+v; want the same, version 2", over.got, got)
			}
		})
	}
}
