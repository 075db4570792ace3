package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/cmd/cli"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// chromium returns the headless browser the page tests drive.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("COWRIE_ENRICH_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: run ./scripts/test (it installs Debian's chromium) or set COWRIE_ENRICH_CHROMIUM")
	return ""
}

// browse runs headless Chromium on url with extra flags and returns stdout.
func browse(t *testing.T, bin, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, flags...)
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", flags, err, errb.String())
	}
	return out.String()
}

// TestStatusPageInChromiumIntegration opens the live status page of a
// running pipeline in headless Chromium: the page's script must fetch
// /status.json and render the pipeline, the counters per stage and the
// recent errors, and a screenshot of it is taken.
func TestStatusPageInChromiumIntegration(t *testing.T) {
	bin := chromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &waitingSource{ips: []string{"81.2.69.1", "81.2.69.2", "2a02:c7f::7", "bogus"}, emitted: make(chan struct{})}
	reg := withSource(t, "waiting", src)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "page.yaml")
	os.WriteFile(cfg, []byte("version: 1\nname: page-test\nsource: {type: waiting}\nstages: [{type: validate}, {type: dedupe}]\nsink: {type: inventory, with: {batch_size: 100, flush_interval: 10ms}}\n"), 0o644)
	addr := freeAddr(t)
	done := make(chan int, 1)
	go func() {
		code, _, _ := invoke(t, ctx, reg, "run", cfg, "--db", testdb.SQLiteURL(t), "--status-dir", dir, "--metrics-addr", addr, "--progress", "never")
		done <- code
	}()
	<-src.emitted
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		var live struct{ Committed int64 }
		_ = json.Unmarshal([]byte(get(t, base+"/status.json")), &live)
		if live.Committed == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not commit its records")
		}
	}

	dom := browse(t, bin, base+"/", "--dump-dom")
	for _, want := range []string{"page-test", "running", "4 IPs committed", "validate", "4 in · 4 out", "dedupe", "bogus", "malformed address: not an ip address"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}

	shot := filepath.Join(dir, "status-page.png")
	if keep := os.Getenv("COWRIE_ENRICH_SCREENSHOT_DIR"); keep != "" {
		shot = filepath.Join(keep, "status-page.png")
	}
	browse(t, bin, base+"/", "--screenshot="+shot, "--window-size=1200,800", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 800 {
		t.Errorf("screenshot is %v, want 1200x800", b)
	}
	t.Logf("screenshot: %s", shot)

	cancel()
	if code := <-done; code != cli.ExitInterrupted {
		t.Errorf("exit %d, want 130", code)
	}
}
