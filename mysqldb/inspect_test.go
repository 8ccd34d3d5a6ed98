package mysqldb_test

import (
	"context"
	"testing"

	"github.com/chatsys/chat/catalog"
	"github.com/chatsys/chat/internal/testenv"
	"github.com/chatsys/chat/mysqldb"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		dsn  string
		want mysqldb.Target
		bad  bool
	}{
		{dsn: "root@tcp(127.0.0.1:3306)/chat", want: mysqldb.Target{Addr: "127.0.0.1:3306", User: "root", Database: "chat"}},
		{dsn: "u:secret@tcp(db.example:3307)/", want: mysqldb.Target{Addr: "db.example:3307", User: "u"}},
		{dsn: "no slash", bad: true},
	}
	for _, tc := range tests {
		got, err := mysqldb.ParseTarget(tc.dsn)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v, error %v", tc.dsn, got, err, tc.want, tc.bad)
		}
	}
}

// TestInspect reads the facts chat doctor judges from the test server,
// whose user holds every privilege: the server and its databases, and a
// probe of the privileges that leaves nothing behind.
func TestInspect(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	ctx := context.Background()
	target, err := mysqldb.ParseTarget(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	server, err := mysqldb.OpenServer(cfg.MySQLDSN, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if v, err := mysqldb.ServerVersion(ctx, server); err != nil || v == "" {
		t.Errorf("server version %q, %v", v, err)
	}
	for name, want := range map[string]bool{target.Database: true, target.Database + "_missing": false} {
		if found, err := mysqldb.DatabaseExists(ctx, server, name); err != nil || found != want {
			t.Errorf("database %s exists: %v, %v; want %v", name, found, err, want)
		}
	}

	db := testenv.DB(t, cfg)
	names := catalog.New(cfg.Namespace)
	g, err := mysqldb.ProbePrivileges(ctx, db, names.DoctorProbe(), names.DoctorLock("test"))
	if err != nil {
		t.Fatal(err)
	}
	if g.User == "" || len(g.Denied) > 0 || len(g.Untried) > 0 || g.LeftBehind || g.LockErr != nil {
		t.Errorf("grants %+v; want every privilege and named locks", g)
	}
	var leftover string
	if err := db.QueryRow("SHOW TABLES LIKE '" + names.DoctorProbe() + "'").Scan(&leftover); err == nil {
		t.Errorf("the probe left table %s behind", leftover)
	}
}
