//go:build ignore

// gen writes the Vitess VSchema of one namespace and the partition map its
// numeric_static_map vindex reads:
//
//	go run deployments/vitess/gen.go -namespace chat -partitions 16 -out deployments/vitess
//
// writes vschema.json and partitions-16.json. See README.md beside it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"strings"
)

type vindex struct {
	Type   string            `json:"type"`
	Params map[string]string `json:"params,omitempty"`
}

type columnVindex struct {
	Column string `json:"column"`
	Name   string `json:"name"`
}

type table struct {
	ColumnVindexes []columnVindex `json:"column_vindexes,omitempty"`
	Pinned         string         `json:"pinned,omitempty"`
}

type keyspace struct {
	Sharded  bool              `json:"sharded"`
	Vindexes map[string]vindex `json:"vindexes"`
	Tables   map[string]table  `json:"tables"`
}

// The vindex names the VSchema defines.
const (
	tokenVindex     = "xxhash"
	partitionVindex = "partition_map"
)

// Tables by how they are placed, without the namespace prefix.
var (
	// Keyed by partition: the column holding the partition id.
	byPartition = map[string]string{
		"events":             "partition_id",
		"partitions":         "partition_id",
		"checkpoints":        "partition_id",
		"search_parked":      "partition_id",
		"erasures":           "partition_id",
		"read_position":      "id",
		"read_position_next": "id", // built by chat replay, swapped in by RENAME TABLE
	}
	// Keyed by application token.
	byToken = []string{
		"applications", "chats", "messages",
		"applications_next", "chats_next", "messages_next", // chat replay's copies
	}
	// Small tables without a partition, kept whole in the shard that holds
	// keyspace id 0 (partition 0, its global rows and the named locks).
	pinned = []string{"workers", "schema_migrations", "doctor_probe"}
)

func main() {
	ns := flag.String("namespace", "chat", "CHAT_NAMESPACE the tables are prefixed with")
	p := flag.Int("partitions", 16, "number of partitions P of the event log")
	jsonDir := flag.String("json-dir", "/vt/vschema", "directory where every Vitess component that builds the VSchema finds the partition map")
	out := flag.String("out", ".", "directory to write vschema.json and partitions-<P>.json into")
	flag.Parse()
	if *p < 1 || *p > 65536 {
		fail(fmt.Errorf("-partitions %d: want 1 to 65536 (partition_id is a SMALLINT UNSIGNED)", *p))
	}
	mapName := fmt.Sprintf("partitions-%d.json", *p)

	ks := keyspace{
		Sharded: true,
		Vindexes: map[string]vindex{
			tokenVindex:     {Type: "xxhash"},
			partitionVindex: {Type: "numeric_static_map", Params: map[string]string{"json_path": path.Join(*jsonDir, mapName)}},
		},
		Tables: map[string]table{},
	}
	for name, col := range byPartition {
		ks.Tables[*ns+"_"+name] = table{ColumnVindexes: []columnVindex{{Column: col, Name: partitionVindex}}}
	}
	for _, name := range byToken {
		ks.Tables[*ns+"_"+name] = table{ColumnVindexes: []columnVindex{{Column: "token", Name: tokenVindex}}}
	}
	for _, name := range pinned {
		ks.Tables[*ns+"_"+name] = table{Pinned: "00"}
	}
	vs, err := json.MarshalIndent(ks, "", "  ")
	if err != nil {
		fail(err)
	}
	write(filepath.Join(*out, "vschema.json"), append(vs, '\n'))
	write(filepath.Join(*out, mapName), partitionMap(*p))
}

// partitionMap sends partition p to the first keyspace id of its range,
// ceil(p * 2^64 / P): partition.Of puts keyspace id k in partition
// floor(k * P / 2^64).
func partitionMap(p int) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	span := new(big.Int).Lsh(big.NewInt(1), 64)
	for i := 0; i < p; i++ {
		start := new(big.Int).Mul(big.NewInt(int64(i)), span)
		start.Add(start, big.NewInt(int64(p-1)))
		start.Quo(start, big.NewInt(int64(p)))
		sep := ","
		if i == p-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %q: %s%s\n", fmt.Sprint(i), start, sep)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func write(name string, data []byte) {
	if err := os.WriteFile(name, data, 0o644); err != nil {
		fail(err)
	}
	fmt.Println("wrote", strings.TrimPrefix(name, "./"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(2)
}
