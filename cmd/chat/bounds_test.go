package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/internal/testenv"
)

// TestReadConcurrencyLimit holds MySQL's answers to one API process so that
// its reads wait: with CHAT_MAX_READS_IN_FLIGHT 2, two reads wait and are
// served once MySQL answers again, every other read is refused at once with
// 503 overloaded and Retry-After, and commands, bounded apart, go on being
// served.
func TestReadConcurrencyLimit(t *testing.T) {
	t.Parallel()
	cfg := testenv.Config(t)
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	mysqlGate := newGate(t, dsn.Addr)
	dsn.Addr = mysqlGate.Addr()
	apiCfg := cfg
	apiCfg.MySQLDSN = dsn.FormatDSN()
	apiCfg.MaxReadsInFlight = 2
	api := start(t, apiCfg, true, false)
	start(t, cfg, false, true)

	token := api.must(t, 201, "POST", "/applications", map[string]any{"name": "busy"}).object(t)["token"].(string)
	chat := "/applications/" + token + "/chats/1"
	api.must(t, 201, "POST", "/applications/"+token+"/chats", map[string]any{"name": "c"})
	api.eventually(t, chat, nil)

	mysqlGate.Hold()
	defer mysqlGate.Release() // a read still waiting would hold up the process's shutdown
	type answer struct {
		status     int
		code       string
		retryAfter string
		took       time.Duration
	}
	const n = 10
	answers := make([]answer, n)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(api.URL + chat + "/messages?per_page=1000")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			r := response{resp.StatusCode, resp.Header, readAll(t, resp)}
			a := answer{status: r.Status, retryAfter: r.Header.Get("Retry-After"), took: time.Since(began)}
			if r.Status >= 400 {
				a.code = r.errorCode(t)
			}
			answers[i] = a
		}()
	}
	// Commands are not reads: they are served while the reads wait.
	time.Sleep(500 * time.Millisecond)
	api.must(t, 201, "POST", chat+"/messages", map[string]any{"body": "while reads wait"})
	released := time.Now()
	mysqlGate.Release()
	wg.Wait()

	overloaded, served := 0, 0
	for _, a := range answers {
		switch {
		case a.status == 503 && a.code == "overloaded":
			overloaded++
			if a.retryAfter == "" {
				t.Error("503 overloaded without Retry-After")
			}
			if a.took > released.Sub(began) {
				t.Errorf("503 overloaded after %s; it should come at once, not once MySQL answers", a.took)
			}
		case a.status == 200:
			served++
			if a.took < released.Sub(began) {
				t.Errorf("a read was served after %s, while MySQL was held", a.took)
			}
		default:
			t.Errorf("answer %+v, want 200 or 503 overloaded", a)
		}
	}
	t.Logf("answers: %+v", answers)
	if overloaded != n-apiCfg.MaxReadsInFlight || served != apiCfg.MaxReadsInFlight {
		t.Errorf("%d overloaded and %d served, want %d and %d", overloaded, served, n-apiCfg.MaxReadsInFlight, apiCfg.MaxReadsInFlight)
	}
	// Once the slots are free again, reads are served again.
	api.eventually(t, chat+"/messages/1", nil)
	if r := api.call(t, http.MethodGet, chat, nil); r.Status != 200 {
		t.Errorf("a read after the wait: %d %s", r.Status, r.Body)
	}
}
