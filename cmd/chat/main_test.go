package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/internal/testenv"
)

func TestStartUpRefusals(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	unmigrated, _ := mysql.ParseDSN(cfg.MySQLDSN)
	unmigrated.DBName = "chat_" + cfg.Namespace + "_nothing"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		says string
	}{
		{"an invalid variable", []string{"serve"}, map[string]string{"CHAT_NAMESPACE": "Bad-Name"}, 2, "CHAT_NAMESPACE"},
		{"an unmigrated database", []string{"serve"}, map[string]string{"CHAT_NAMESPACE": cfg.Namespace, "CHAT_MYSQL_DSN": unmigrated.FormatDSN()}, 1, "run `chat migrate`"},
		{"a worker on an unmigrated namespace", []string{"work"}, map[string]string{"CHAT_NAMESPACE": cfg.Namespace + "x", "CHAT_MYSQL_DSN": cfg.MySQLDSN}, 1, "run `chat migrate`"},
		{"an unknown command", []string{"frobnicate"}, nil, 2, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			code := run(context.Background(), tc.args, lookup, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.says) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut.String(), tc.code, tc.says)
			}
		})
	}
}

func TestEnvListsEveryVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"env"}, func(string) (string, bool) { return "", false }, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, v := range []string{"CHAT_HTTP_ADDR", "CHAT_MYSQL_DSN", "CHAT_REDIS_URL", "CHAT_AMQP_URL", "CHAT_ELASTICSEARCH_URL", "CHAT_NAMESPACE"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("chat env does not list %s", v)
		}
	}
}
