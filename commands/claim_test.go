package commands

import "testing"

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := fingerprint("CreateMessage", "tok", "1", "hello")
	if len(base) != 32 {
		t.Fatalf("fingerprint %q: want 32 hex digits", base)
	}
	if again := fingerprint("CreateMessage", "tok", "1", "hello"); again != base {
		t.Errorf("the same request has fingerprints %s and %s", base, again)
	}
	differ := []struct {
		name   string
		kind   string
		fields []string
	}{
		{"another kind", "EditMessage", []string{"tok", "1", "hello"}},
		{"another token", "CreateMessage", []string{"tol", "1", "hello"}},
		{"another chat", "CreateMessage", []string{"tok", "2", "hello"}},
		{"another body", "CreateMessage", []string{"tok", "1", "hello!"}},
		{"fields shifted", "CreateMessage", []string{"tok1", "", "hello"}},
		{"a field split", "CreateMessage", []string{"tok", "1", "hel", "lo"}},
		{"a field missing", "CreateMessage", []string{"tok", "1"}},
		{"the kind in a field", "", []string{"CreateMessage", "tok", "1", "hello"}},
	}
	seen := map[string]string{base: "the base request"}
	for _, tc := range differ {
		fp := fingerprint(tc.kind, tc.fields...)
		if prev, dup := seen[fp]; dup {
			t.Errorf("%s has the fingerprint of %s", tc.name, prev)
		}
		seen[fp] = tc.name
	}
}
