package deployments

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/bits"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/chatsys/chat/apptoken"
	"github.com/chatsys/chat/catalog"
)

// The Vitess files are written for the default namespace and P = 16.
const (
	vitessDir        = "vitess"
	vschemaPath      = "vitess/vschema.json"
	vitessNamespace  = "chat"
	vitessPartitions = 16
	partitionMapPath = "vitess/partitions-16.json"
	migrationsDir    = "../mysqldb/migrations"
)

// The vindexes the VSchema defines, and where each table lives.
const (
	tokenVindex     = "xxhash"
	partitionVindex = "partition_map"
)

// vitessPlacement is where each table must be: sharded by a column through a
// vindex, or pinned whole to one keyspace id.
var vitessPlacement = map[string]struct{ column, vindex, pinned string }{
	"chat_events":             {"partition_id", partitionVindex, ""},
	"chat_partitions":         {"partition_id", partitionVindex, ""},
	"chat_checkpoints":        {"partition_id", partitionVindex, ""},
	"chat_search_parked":      {"partition_id", partitionVindex, ""},
	"chat_erasures":           {"partition_id", partitionVindex, ""},
	"chat_read_position":      {"id", partitionVindex, ""},
	"chat_read_position_next": {"id", partitionVindex, ""},
	"chat_applications":       {"token", tokenVindex, ""},
	"chat_applications_next":  {"token", tokenVindex, ""},
	"chat_chats":              {"token", tokenVindex, ""},
	"chat_chats_next":         {"token", tokenVindex, ""},
	"chat_messages":           {"token", tokenVindex, ""},
	"chat_messages_next":      {"token", tokenVindex, ""},
	"chat_workers":            {"", "", "00"},
	"chat_schema_migrations":  {"", "", "00"},
	"chat_doctor_probe":       {"", "", "00"},
}

// What migration 0004 (the partitioned event log) adds. Until a migration
// numbered 4 or more is in the directory, these may be missing from it; once
// one is, they must be there.
var (
	partitionedLogTables  = []string{"chat_partitions", "chat_workers"}
	partitionedLogColumns = map[string][]string{
		"chat_events":        {"partition_id"},
		"chat_partitions":    {"partition_id"},
		"chat_checkpoints":   {"partition_id"},
		"chat_search_parked": {"partition_id"},
	}
)

// The keyspace VSchema, as much of Vitess's vschema.Keyspace as the file
// uses; unknown fields fail the parse, so a misspelt key does not pass.
type vschemaKeyspace struct {
	Sharded  bool `json:"sharded"`
	Vindexes map[string]struct {
		Type   string            `json:"type"`
		Params map[string]string `json:"params"`
	} `json:"vindexes"`
	Tables map[string]struct {
		Type           string `json:"type"`
		ColumnVindexes []struct {
			Column  string   `json:"column"`
			Name    string   `json:"name"`
			Columns []string `json:"columns"`
		} `json:"column_vindexes"`
		Pinned string `json:"pinned"`
	} `json:"tables"`
}

func loadVSchema(t *testing.T) vschemaKeyspace {
	t.Helper()
	data, err := os.ReadFile(vschemaPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ks vschemaKeyspace
	if err := dec.Decode(&ks); err != nil {
		t.Fatalf("%s: %v", vschemaPath, err)
	}
	return ks
}

// loadPartitionMap reads a numeric_static_map file as Vitess does: a JSON
// object from decimal strings to unsigned 64-bit numbers.
func loadPartitionMap(t *testing.T, name string) map[uint64]uint64 {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]uint64
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[uint64]uint64{}
	for k, v := range raw {
		n, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			t.Fatalf("%s: key %q: %v", name, k, err)
		}
		out[n] = v
	}
	return out
}

// ---------------------------------------------------------------------------
// The schema the migrations build, followed statement by statement.

type migratedSchema struct {
	tables map[string]map[string]bool // table -> columns
	latest int                        // highest migration version present
}

var (
	migrationName = regexp.MustCompile(`^(\d+)_\w+\.sql$`)
	lineComment   = regexp.MustCompile(`(?m)--.*$`)
	createLike    = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s+LIKE\s+(\S+)$`)
	createTable   = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s*\((.*)\)[^)]*$`)
	alterTable    = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(\S+)\s+(.*)$`)
	renameTable   = regexp.MustCompile(`(?is)^RENAME\s+TABLE\s+(.*)$`)
	dropTable     = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(.*)$`)
	toPair        = regexp.MustCompile(`(?is)^(\S+)\s+TO\s+(\S+)$`)
)

// notColumns are the words that start a table element or an ALTER clause
// that names no column.
var notColumns = map[string]bool{
	"PRIMARY": true, "UNIQUE": true, "KEY": true, "INDEX": true, "CONSTRAINT": true,
	"FOREIGN": true, "FULLTEXT": true, "SPATIAL": true, "CHECK": true, "PARTITION": true,
}

func tableName(s string) string {
	s = strings.Trim(s, "`")
	return strings.ReplaceAll(s, "{{ns}}", vitessNamespace)
}

// splitTop splits s at the commas outside parentheses and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func loadMigratedSchema(t *testing.T) migratedSchema {
	t.Helper()
	entries, err := os.ReadDir(migrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	s := migratedSchema{tables: map[string]map[string]bool{}}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		s.latest = max(s.latest, v)
		files = append(files, e.Name())
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("%s: no migrations", migrationsDir)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(migrationsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range strings.Split(lineComment.ReplaceAllString(string(data), ""), ";") {
			stmt = strings.Join(strings.Fields(stmt), " ")
			if stmt != "" {
				if err := s.apply(stmt); err != nil {
					t.Fatalf("%s: %v in: %s", f, err, stmt)
				}
			}
		}
	}
	return s
}

func (s migratedSchema) apply(stmt string) error {
	if m := createLike.FindStringSubmatch(stmt); m != nil {
		src, ok := s.tables[tableName(m[2])]
		if !ok {
			return fmt.Errorf("CREATE TABLE LIKE an unknown table %s", m[2])
		}
		s.tables[tableName(m[1])] = maps.Clone(src)
		return nil
	}
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		name := tableName(m[1])
		if _, ok := s.tables[name]; ok && strings.Contains(strings.ToUpper(stmt), "IF NOT EXISTS") {
			return nil
		}
		cols := map[string]bool{}
		for _, def := range splitTop(m[2]) {
			w := strings.Fields(def)
			if len(w) == 0 || notColumns[strings.ToUpper(w[0])] {
				continue
			}
			cols[strings.Trim(w[0], "`")] = true
		}
		s.tables[name] = cols
		return nil
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil {
		name := tableName(m[1])
		cols, ok := s.tables[name]
		if !ok {
			return fmt.Errorf("ALTER TABLE of an unknown table %s", name)
		}
		for _, clause := range splitTop(m[2]) {
			w := strings.Fields(clause)
			up := func(i int) string {
				if i < len(w) {
					return strings.ToUpper(w[i])
				}
				return ""
			}
			i := 1
			switch up(0) {
			case "ADD", "DROP", "MODIFY", "CHANGE":
				if up(i) == "COLUMN" {
					i++
				}
				if up(i) == "IF" {
					i += 2 // IF [NOT] EXISTS
					if up(i) == "EXISTS" {
						i++
					}
				}
				if notColumns[up(i)] || up(i) == "" {
					continue
				}
				col := strings.Trim(w[i], "`")
				switch up(0) {
				case "ADD":
					cols[col] = true
				case "DROP":
					delete(cols, col)
				case "CHANGE":
					if i+1 < len(w) {
						delete(cols, col)
						cols[strings.Trim(w[i+1], "`")] = true
					}
				}
			case "RENAME":
				switch up(1) {
				case "COLUMN":
					if len(w) >= 5 {
						delete(cols, strings.Trim(w[2], "`"))
						cols[strings.Trim(w[4], "`")] = true
					}
				case "TO", "AS":
					delete(s.tables, name)
					name = tableName(w[2])
					s.tables[name] = cols
				}
			}
		}
		return nil
	}
	if m := renameTable.FindStringSubmatch(stmt); m != nil {
		for _, pair := range splitTop(m[1]) {
			p := toPair.FindStringSubmatch(pair)
			if p == nil {
				return fmt.Errorf("RENAME TABLE pair %q", pair)
			}
			from, to := tableName(p[1]), tableName(p[2])
			cols, ok := s.tables[from]
			if !ok {
				return fmt.Errorf("RENAME TABLE of an unknown table %s", from)
			}
			delete(s.tables, from)
			s.tables[to] = cols
		}
		return nil
	}
	if m := dropTable.FindStringSubmatch(stmt); m != nil {
		for _, name := range splitTop(m[1]) {
			delete(s.tables, tableName(name))
		}
		return nil
	}
	return nil // data statements and others leave the tables as they are
}

// ---------------------------------------------------------------------------
// The VSchema against the migrations.

func TestVitessVSchemaParses(t *testing.T) {
	ks := loadVSchema(t)
	if !ks.Sharded {
		t.Error("the keyspace must be sharded")
	}
	if v, ok := ks.Vindexes[tokenVindex]; !ok || v.Type != "xxhash" || len(v.Params) != 0 {
		t.Errorf("vindex %s = %+v, want type xxhash without params", tokenVindex, v)
	}
	v, ok := ks.Vindexes[partitionVindex]
	if !ok || v.Type != "numeric_static_map" {
		t.Fatalf("vindex %s = %+v, want type numeric_static_map", partitionVindex, v)
	}
	jsonPath := v.Params["json_path"]
	if len(v.Params) != 1 || !path.IsAbs(jsonPath) {
		t.Errorf("vindex %s params = %v, want only an absolute json_path", partitionVindex, v.Params)
	}
	if path.Base(jsonPath) != filepath.Base(partitionMapPath) {
		t.Errorf("json_path %s names another file than the shipped %s", jsonPath, partitionMapPath)
	}
	if len(ks.Vindexes) != 2 {
		t.Errorf("vindexes %v: want only %s and %s", slices.Sorted(maps.Keys(ks.Vindexes)), tokenVindex, partitionVindex)
	}
}

func TestVitessVSchemaCoversMigrations(t *testing.T) {
	ks := loadVSchema(t)
	schema := loadMigratedSchema(t)
	pending := schema.latest < 4 // the partitioned event log is not migrated yet
	if pending {
		t.Logf("latest migration is %04d: the tables and columns of migration 0004 may be missing from %s", schema.latest, migrationsDir)
	}

	names := catalog.New(vitessNamespace)
	required := map[string]string{} // table -> why
	for name := range schema.tables {
		required[name] = "created by " + migrationsDir
	}
	for _, name := range partitionedLogTables {
		required[name] = "added by migration 0004"
	}
	required[names.SchemaMigrations()] = "created by chat migrate"
	required[names.DoctorProbe()] = "probed by chat doctor"
	for _, name := range names.ReadTablesCopy("_next").All() {
		required[name] = "built by chat replay"
	}

	for _, name := range slices.Sorted(maps.Keys(required)) {
		if _, ok := ks.Tables[name]; !ok {
			t.Errorf("%s (%s) is missing from %s", name, required[name], vschemaPath)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ks.Tables)) {
		if _, ok := required[name]; !ok {
			t.Errorf("%s lists %s, which no migration or command creates", vschemaPath, name)
		}
	}
	for _, name := range partitionedLogTables {
		if _, ok := schema.tables[name]; !ok && !pending {
			t.Errorf("migration %04d is present but no migration creates %s", schema.latest, name)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(ks.Tables)) {
		tbl := ks.Tables[name]
		want, ok := vitessPlacement[name]
		if !ok {
			t.Errorf("%s: no placement is known for it; add it to vitessPlacement", name)
			continue
		}
		if tbl.Type != "" {
			t.Errorf("%s: type %q, want a plain table", name, tbl.Type)
		}
		if want.pinned != "" {
			if tbl.Pinned != want.pinned || len(tbl.ColumnVindexes) != 0 {
				t.Errorf("%s: pinned %q with %d column vindexes, want pinned %q alone", name, tbl.Pinned, len(tbl.ColumnVindexes), want.pinned)
			}
			if _, err := hex.DecodeString(tbl.Pinned); err != nil {
				t.Errorf("%s: pinned %q is not a hex keyspace id: %v", name, tbl.Pinned, err)
			}
			continue
		}
		if tbl.Pinned != "" || len(tbl.ColumnVindexes) != 1 {
			t.Errorf("%s: want one column vindex and no pin, have %+v", name, tbl)
			continue
		}
		cv := tbl.ColumnVindexes[0]
		if cv.Column != want.column || cv.Name != want.vindex || len(cv.Columns) != 0 {
			t.Errorf("%s: column vindex %s on %s, want %s on %s", name, cv.Name, cv.Column, want.vindex, want.column)
		}
		if _, ok := ks.Vindexes[cv.Name]; !ok {
			t.Errorf("%s: vindex %s is not defined", name, cv.Name)
		}

		// The vindex column must be in the table the migrations build (a
		// replay's copy is built LIKE the live table).
		live := strings.TrimSuffix(name, "_next")
		cols, created := schema.tables[live]
		switch {
		case cols[cv.Column]:
		case pending && slices.Contains(partitionedLogColumns[live], cv.Column):
			t.Logf("%s.%s: not migrated yet (migration 0004)", live, cv.Column)
		case !created && pending && slices.Contains(partitionedLogTables, live):
			t.Logf("%s: not migrated yet (migration 0004)", live)
		case !created:
			t.Errorf("%s: sharded by %s, but no migration creates %s", name, cv.Column, live)
		default:
			t.Errorf("%s: sharded by %s, which CREATE TABLE %s does not have (columns: %v)", name, cv.Column, live, slices.Sorted(maps.Keys(cols)))
		}
	}
}

// TestVitessGeneratorMatchesFiles keeps the shipped files what gen.go
// writes for the default namespace and P = 16.
func TestVitessGeneratorMatchesFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gen.go")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out := t.TempDir()
	cmd := exec.Command(goBin, "run", filepath.Join(vitessDir, "gen.go"), "-namespace", vitessNamespace, "-partitions", strconv.Itoa(vitessPartitions), "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen.go: %v\n%s", err, b)
	}
	for _, name := range []string{vschemaPath, partitionMapPath} {
		want, err := os.ReadFile(filepath.Join(out, filepath.Base(name)))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s differs from what gen.go writes; run: go run deployments/vitess/gen.go -out deployments/vitess", name)
		}
	}
}

func TestVitessPartitionMap(t *testing.T) {
	m := loadPartitionMap(t, partitionMapPath)
	if len(m) != vitessPartitions {
		t.Errorf("%s maps %d partitions, want %d", partitionMapPath, len(m), vitessPartitions)
	}
	for p := range uint64(vitessPartitions) {
		ksid, ok := m[p]
		if !ok {
			t.Errorf("partition %d is not mapped", p)
			continue
		}
		if ksid != p<<60 {
			t.Errorf("partition %d -> %d, want %d (p<<60)", p, ksid, p<<60)
		}
		// The start of partition p's range is in partition p.
		if got := partitionOf(ksid, vitessPartitions); got != p {
			t.Errorf("keyspace id %#x of partition %d is in partition %d", ksid, p, got)
		}
	}
}

// ---------------------------------------------------------------------------
// Keyspace ids.

// xxhashKeyspaceID is the keyspace id Vitess's xxhash vindex gives a value
// (go/vt/vtgate/vindexes/xxhash.go): XXH64 with seed 0 of the value's bytes,
// written little-endian.
func xxhashKeyspaceID(value string) []byte {
	var ksid [8]byte
	binary.LittleEndian.PutUint64(ksid[:], xxhash.Sum64String(value))
	return ksid[:]
}

// numericKeyspaceID is the keyspace id Vitess's numeric_static_map vindex
// gives a number mapped to n: n written big-endian.
func numericKeyspaceID(n uint64) []byte {
	var ksid [8]byte
	binary.BigEndian.PutUint64(ksid[:], n)
	return ksid[:]
}

// partitionOf is the partition of keyspace id k (read as a big-endian
// number) among p: floor(k * p / 2^64).
func partitionOf(k uint64, p uint64) uint64 {
	hi, _ := bits.Mul64(k, p)
	return hi
}

func TestVitessXXHashKeyspaceID(t *testing.T) {
	// Vitess's own expectations (go/vt/vtgate/vindexes/xxhash_test.go).
	for _, tc := range []struct {
		in   string
		ksid string
	}{
		{"test1", "d01ab7e4d6978f0b"},
		{"test2", "87eb11714c0a0e89"},
		{"testaverylongvaluetomakesurethisworks", "81d8c38e0d850e6a"},
		{"", "99e9d85137db46ef"}, // NULL hashes no bytes
	} {
		if got := hex.EncodeToString(xxhashKeyspaceID(tc.in)); got != tc.ksid {
			t.Errorf("keyspace id of %q = %s, want %s", tc.in, got, tc.ksid)
		}
	}
	// The number partition.Of reads is the keyspace id read big-endian, that
	// is the XXH64 sum with its bytes reversed.
	k := binary.BigEndian.Uint64(xxhashKeyspaceID("test1"))
	if k != 0xd01ab7e4d6978f0b || k != bits.ReverseBytes64(xxhash.Sum64String("test1")) {
		t.Errorf("k(test1) = %#x", k)
	}
	if p := partitionOf(k, vitessPartitions); p != 0xd {
		t.Errorf("partition of test1 = %d, want 13", p)
	}
}

// keyRange is a shard's half-open range of keyspace ids; empty ends are
// open, and ids compare as byte strings, as Vitess compares them.
type keyRange struct {
	name       string
	start, end []byte
}

func (r keyRange) contains(ksid []byte) bool {
	return (len(r.start) == 0 || bytes.Compare(ksid, r.start) >= 0) &&
		(len(r.end) == 0 || bytes.Compare(ksid, r.end) < 0)
}

// shards parses Vitess shard names such as "-40", "40-80", "c0-".
func shards(t *testing.T, names ...string) []keyRange {
	t.Helper()
	var out []keyRange
	for _, n := range names {
		lo, hi, ok := strings.Cut(n, "-")
		if !ok {
			t.Fatalf("shard name %q", n)
		}
		start, err1 := hex.DecodeString(lo)
		end, err2 := hex.DecodeString(hi)
		if err1 != nil || err2 != nil {
			t.Fatalf("shard name %q", n)
		}
		out = append(out, keyRange{n, start, end})
	}
	return out
}

// equalShards are n shards of equal width, n a power of two up to 256.
func equalShards(t *testing.T, n int) []keyRange {
	t.Helper()
	var names []string
	for i := range n {
		lo, hi := "", ""
		if i > 0 {
			lo = fmt.Sprintf("%02x", i*256/n)
		}
		if i < n-1 {
			hi = fmt.Sprintf("%02x", (i+1)*256/n)
		}
		names = append(names, lo+"-"+hi)
	}
	return shards(t, names...)
}

func shardOf(t *testing.T, layout []keyRange, ksid []byte) string {
	t.Helper()
	var in []string
	for _, r := range layout {
		if r.contains(ksid) {
			in = append(in, r.name)
		}
	}
	if len(in) != 1 {
		t.Fatalf("keyspace id %x is in shards %v", ksid, in)
	}
	return in[0]
}

// TestVitessTokenRowsShareTheirPartitionsShard checks the property every
// single-shard transaction rests on: an application's read rows (sharded by
// token through xxhash) are in the shard of its partition's rows (sharded by
// partition id through the partition map), when shards are unions of
// partition ranges.
func TestVitessTokenRowsShareTheirPartitionsShard(t *testing.T) {
	m := loadPartitionMap(t, partitionMapPath)
	tokens := []string{"test1", "test2", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "77777777777777777777777777"}
	for range 2000 {
		tokens = append(tokens, apptoken.New())
	}
	for _, n := range []int{1, 2, 4, 8, 16} {
		layout := equalShards(t, n)
		perShard := map[string]int{}
		for _, token := range tokens {
			ksid := xxhashKeyspaceID(token)
			p := partitionOf(binary.BigEndian.Uint64(ksid), vitessPartitions)
			rows := shardOf(t, layout, ksid)
			events := shardOf(t, layout, numericKeyspaceID(m[p]))
			if rows != events {
				t.Errorf("%d shards: token %s (keyspace id %x) is read in shard %s, its partition %d is in shard %s", n, token, ksid, rows, p, events)
			}
			perShard[rows]++
		}
		if len(perShard) != n {
			t.Errorf("%d shards: %d tokens landed in only %d of them: %v", n, len(tokens), len(perShard), perShard)
		}
	}

	// Three shards cut partition ranges: some partition's applications are
	// then read in another shard than the one holding its events.
	layout := shards(t, "-55", "55-aa", "aa-")
	split := 0
	for p := range uint64(vitessPartitions) {
		first := numericKeyspaceID(m[p])
		last := numericKeyspaceID(m[p] + 1<<60 - 1)
		if shardOf(t, layout, first) != shardOf(t, layout, last) {
			split++
		}
	}
	if split == 0 {
		t.Error("three equal shards should cut some of the 16 partition ranges")
	}
}
