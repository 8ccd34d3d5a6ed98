package projections

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// FoldAccents removes diacritics (Unicode NFD, combining marks dropped), so
// that "Café" and "cafe" index and search alike. It runs in the application,
// on indexed text and queries alike, because Elasticsearch has asciifolding
// as a token filter while the engine standing in for it in tests has it only
// as a char filter.
func FoldAccents(s string) string {
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}
