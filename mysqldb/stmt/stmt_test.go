package stmt_test

import (
	"testing"

	"github.com/chatsys/chat/mysqldb/stmt"
)

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		width, n int
		list     string
		tuples   string
	}{
		{width: 1, n: 1, list: "?", tuples: "(?)"},
		{width: 3, n: 1, list: "?", tuples: "(?,?,?)"},
		{width: 2, n: 3, list: "?,?,?", tuples: "(?,?),(?,?),(?,?)"},
	} {
		if got := stmt.Placeholders(tc.n); got != tc.list {
			t.Errorf("Placeholders(%d) = %q, want %q", tc.n, got, tc.list)
		}
		if got := stmt.Tuples(tc.width, tc.n); got != tc.tuples {
			t.Errorf("Tuples(%d, %d) = %q, want %q", tc.width, tc.n, got, tc.tuples)
		}
	}
}
