package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatsys/chat/internal/testenv"
)

// browser starts a headless Chromium (Debian's chromium package) for the
// test and returns a func that opens a new page (tab) in it.
func browser(t *testing.T) func() context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs Debian's package)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return func() context.Context {
		page, cancel := chromedp.NewContext(root)
		t.Cleanup(cancel)
		return page
	}
}

// waitJS waits until the JavaScript expression js is true on the page, and
// reports whether it became true within the time.
func waitJS(t *testing.T, page context.Context, js string, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(page, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the page's element sel holds text.
func waitText(t *testing.T, page context.Context, sel, text string, within time.Duration) {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.includes(%q)`, sel, text)
	if !waitJS(t, page, js, within) {
		got, _ := chromedp.Run(page, chromedp.TextContent(chromedp.CSS(sel)))
		t.Fatalf("%s does not show %q within %s; it shows %q", sel, text, within, got)
	}
}

// waitDeleted waits until the page shows message number of the open chat
// as deleted, in its place and without its words (body).
func waitDeleted(t *testing.T, page context.Context, number int, body string, within time.Duration) {
	t.Helper()
	sel := fmt.Sprintf(`#messages li[data-number="%d"]`, number)
	js := fmt.Sprintf(`(() => { const li = document.querySelector(%q);
		return !!li && li.classList.contains("deleted") && li.textContent.includes("message deleted") && !li.textContent.includes(%q); })()`, sel, body)
	if !waitJS(t, page, js, within) {
		got, _ := chromedp.Run(page, chromedp.TextContent(chromedp.CSS("#messages")))
		t.Fatalf("message %d is not shown deleted within %s; the messages show %q", number, within, got)
	}
}

// TestWebClientInABrowser: two pages of the web client on one chat; a
// message posted in one appears live in the other, an edit too; search
// finds it; after the server is restarted, a page catches up with what
// was posted meanwhile through another process; and deletes, made through
// the API or a page's Delete button, show on the pages, and on a page opened
// afterwards, as deleted messages in their places.
func TestWebClientInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	t.Parallel()
	cfg := testenv.Config(t)
	newPage := browser(t)
	start(t, cfg, false, true) // the worker
	server := start(t, cfg, true, false)

	a, b := newPage(), newPage()
	// Page a creates the application and the chat through the client.
	if err := chromedp.Do(a,
		chromedp.Navigate(server.URL+"/"),
		chromedp.SetValue(chromedp.CSS("#app-name"), "browsers"),
		chromedp.Click(chromedp.CSS("#create-app button[type=submit]")),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, a, "#app-info", "browsers", 10*time.Second)
	if err := chromedp.Do(a, chromedp.SetValue(chromedp.CSS("#chat-name"), "general"), chromedp.Click(chromedp.CSS("#create-chat button[type=submit]"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, a, "#chat-title", "general", 10*time.Second)
	hash, err := chromedp.Run(a, chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Split(strings.TrimPrefix(hash, "#"), "/")[0]
	// Page b opens the same chat by its link.
	if err := chromedp.Do(b, chromedp.Navigate(server.URL+"/"+hash)); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, "#status", "live", 10*time.Second)
	waitText(t, a, "#status", "live", 10*time.Second)

	post := func(page context.Context, body string) {
		t.Helper()
		if err := chromedp.Do(page, chromedp.SetValue(chromedp.CSS("#body"), body), chromedp.Click(chromedp.CSS("#post button[type=submit]"))); err != nil {
			t.Fatal(err)
		}
	}
	post(a, "hello from page a")
	waitText(t, b, "#messages", "hello from page a", 5*time.Second)
	post(b, "and back from page b")
	waitText(t, a, "#messages", "and back from page b", 5*time.Second)

	// Search: the index trails the read tables a little, so ask again.
	testenv.Eventually(t, testenv.SearchWait, "search finds the message", func() bool {
		if err := chromedp.Do(b, chromedp.SetValue(chromedp.CSS("#q"), "pag"), chromedp.Click(chromedp.CSS("#search button[type=submit]"))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		found, _ := chromedp.Run(b, chromedp.TextContent(chromedp.CSS("#results")))
		return strings.Contains(found, "hello from page a") && strings.Contains(found, "and back from page b")
	})

	// The server goes; messages are posted through another process
	// meanwhile; the server comes back on its address and page b, whose
	// EventSource reconnects with Last-Event-ID, catches up.
	addr := strings.TrimPrefix(server.URL, "http://")
	server.stop()
	waitText(t, b, "#status", "reconnecting", 10*time.Second)
	other := start(t, cfg, true, false)
	base := "/applications/" + token + "/chats/1/messages"
	other.must(t, 201, "POST", base, map[string]any{"body": "posted while the server was away"})
	other.must(t, 200, "PATCH", base+"/1", map[string]any{"body": "hello from page a, edited"})
	startAt(t, cfg, addr, true, false, func(*process) {})
	waitText(t, b, "#messages", "posted while the server was away", 15*time.Second)
	waitText(t, b, "#messages", "hello from page a, edited", 5*time.Second)
	count, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("#messages li").length`))
	if err != nil {
		t.Fatal(err)
	}
	if count != 3 {
		t.Errorf("page b shows %d messages, want 3", count)
	}

	// A delete through the API reaches page b live.
	other.must(t, 204, "DELETE", base+"/3", nil)
	waitDeleted(t, b, 3, "posted while the server was away", 15*time.Second)

	// Page b's Delete button (its confirm answered yes) deletes message 2,
	// and page a, once reconnected after the restart (message 3 reaches it
	// only as deleted), shows the delete.
	waitText(t, a, "#messages", "hello from page a, edited", 15*time.Second)
	if err := chromedp.Do(b,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#messages li[data-number="2"] button.remove`)),
	); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, a, 2, "and back from page b", 15*time.Second)
	waitDeleted(t, a, 3, "posted while the server was away", 5*time.Second)
	testenv.Eventually(t, 15*time.Second, "GET of the message deleted in the browser", func() bool {
		r := other.call(t, "GET", base+"/2", nil)
		return r.Status == 404 && errorCode(t, r) == "message_deleted"
	})

	// A page opened now reads the chat from its start: the deleted messages
	// come as deleted, never with their words or an empty body.
	c := newPage()
	if err := chromedp.Do(c, chromedp.Navigate("http://"+addr+"/"+hash)); err != nil {
		t.Fatal(err)
	}
	waitText(t, c, "#messages", "hello from page a, edited", 15*time.Second)
	waitDeleted(t, c, 2, "and back from page b", 5*time.Second)
	waitDeleted(t, c, 3, "posted while the server was away", 5*time.Second)
	shown, err := chromedp.Run(c, chromedp.Evaluate[string](
		`[...document.querySelectorAll("#messages li")].map((li) => li.dataset.number + (li.classList.contains("deleted") ? ":deleted" : "")).join(" ")`))
	if err != nil {
		t.Fatal(err)
	}
	if shown != "1 2:deleted 3:deleted" {
		t.Errorf("the new page shows %q, want 1 2:deleted 3:deleted", shown)
	}
}
