package readmodel

import "testing"

// TestSearchWindow checks which pages of search results can be served:
// those that start within Elasticsearch's result window, the last one cut
// at its end.
func TestSearchWindow(t *testing.T) {
	tests := []struct {
		page, perPage int64
		from, size    int64
		refused       bool
	}{
		{1, 50, 0, 50, false},
		{200, 50, 9950, 50, false},
		{201, 50, 0, 0, true},
		{10, 1000, 9000, 1000, false},
		{11, 1000, 0, 0, true},
		{34, 300, 9900, 100, false}, // straddles the end: cut there
		{35, 300, 0, 0, true},
		{10000, 1, 9999, 1, false},
		{10001, 1, 0, 0, true},
		{1 << 32, 1000, 0, 0, true},
	}
	for _, tc := range tests {
		from, size, err := searchWindow(Page{Number: tc.page, PerPage: tc.perPage})
		if (err != nil) != tc.refused || from != tc.from || size != tc.size {
			t.Errorf("page %d of %d: from %d size %d err %v; want from %d size %d refused %v", tc.page, tc.perPage, from, size, err, tc.from, tc.size, tc.refused)
		}
	}
}
