// Package docs holds the project's documentation pages; its test keeps
// what they name true to the code.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pages are the documents whose references are checked, from the
// repository's root.
var pages = []string{"README.md", "ARCHITECTURE.md", "docs/api.md", "docs/configuration.md", "docs/operations.md", "docs/scaling.md", "docs/developing.md", "docs/measuring.md", "docs/guarantees.md", "docs/design.md"}

var (
	goFile   = regexp.MustCompile("`((?:[a-z0-9_]+/)+[a-z0-9_]+\\.(?:go|sql|json|yaml|sh))")
	testName = regexp.MustCompile(`\b(Test[A-Z][A-Za-z0-9]+)\b`)
	link     = regexp.MustCompile(`\]\(([^)#:]+)(?:#[^)]*)?\)`)
)

// TestPagesNameWhatExists: every file a page names in code type (a path
// with a directory, such as `api/stream.go`), every test it names, and
// every relative link it holds exists.
func TestPagesNameWhatExists(t *testing.T) {
	t.Parallel()
	root := ".."
	tests := testNames(t, root)
	for _, page := range pages {
		b, err := os.ReadFile(filepath.Join(root, page))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range goFile.FindAllStringSubmatch(text, -1) {
			if !exists(root, m[1]) {
				t.Errorf("%s names %s, which does not exist", page, m[1])
			}
		}
		for _, m := range testName.FindAllStringSubmatch(text, -1) {
			if !tests[m[1]] {
				t.Errorf("%s names %s, which no test file defines", page, m[1])
			}
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			if !exists(filepath.Join(root, filepath.Dir(page)), m[1]) {
				t.Errorf("%s links to %s, which does not exist", page, m[1])
			}
		}
	}
}

func exists(dir, path string) bool {
	_, err := os.Stat(filepath.Join(dir, path))
	return err == nil
}

// testNames returns the names of every test function of the module.
func testNames(t *testing.T, root string) map[string]bool {
	t.Helper()
	def := regexp.MustCompile(`(?m)^func (Test[A-Z][A-Za-z0-9]*)\(`)
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
