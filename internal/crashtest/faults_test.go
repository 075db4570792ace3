package crashtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cowrie-enrich/cowrie-enrich/internal/crashtest"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/status"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// rig is the binary, the slowed simulated providers and the sessions every
// database of a test is seeded with.
type rig struct {
	bin      string
	svc      *simulate.Services
	sessions []demodata.Session
}

func newRig(t *testing.T, sessions int) *rig {
	t.Helper()
	svc, err := simulate.Start(t.TempDir(), simulate.Options{CymruLatency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return &rig{bin: crashtest.Build(t), svc: svc, sessions: demodata.Generate(17, sessions, time.Now())}
}

// seed migrates the database at url and inserts the rig's sessions.
func (r *rig) seed(t *testing.T, url string) *store.DB {
	t.Helper()
	db := testdb.Migrated(t, url)
	if err := demodata.Insert(context.Background(), db, r.sessions); err != nil {
		t.Fatal(err)
	}
	return db
}

// args are the arguments of a slowed, verbose run of cmd against url.
func (r *rig) args(url, statusDir string, cmd ...string) []string {
	a := append(append([]string{}, cmd...), "--db", url, "--status-dir", statusDir, "--progress", "never", "--verbose")
	return append(a, slowed(r.svc)...)
}

// mustRun runs the binary to completion and fails the test unless it
// exits 0.
func (r *rig) mustRun(t *testing.T, what string, args []string) {
	t.Helper()
	o, err := crashtest.Run(context.Background(), r.bin, 0, args...)
	if err != nil || o.ExitCode != 0 {
		t.Fatalf("%s: exit %d, %v\n%s", what, o.ExitCode, err, o.Stderr)
	}
}

func read(t *testing.T, db *store.DB) crashtest.Tables {
	t.Helper()
	tables, err := crashtest.Read(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// clean runs refresh-ips once on a fresh database made by newURL and
// returns its tables and how long it took.
func (r *rig) clean(t *testing.T, url string) (crashtest.Tables, time.Duration) {
	t.Helper()
	db := r.seed(t, url)
	start := time.Now()
	r.mustRun(t, "clean run", r.args(url, t.TempDir(), "run", "refresh-ips"))
	elapsed := time.Since(start)
	want := read(t, db)
	if len(want["ip_inventory"]) < 50 || len(want["asn_inventory"]) < 5 {
		t.Fatalf("the clean run wrote %d addresses and %d ASNs; too few to prove anything", len(want["ip_inventory"]), len(want["asn_inventory"]))
	}
	return want, elapsed
}

func equal(t *testing.T, what string, want, got crashtest.Tables) {
	t.Helper()
	if diff := crashtest.Diff(want, got, 10); len(diff) > 0 {
		t.Errorf("%s: tables differ from the clean run:\n%s", what, strings.Join(diff, "\n"))
	}
}

// TestTerminatedConnectionsIntegration kills the PostgreSQL backends of a
// refresh-ips run (found by the application_name its URL sets) again and
// again while it works. The run must either complete with the tables of a
// clean run, or exit 1 naming the database problem, after which a rerun
// completes with those tables.
func TestTerminatedConnectionsIntegration(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 450)
	want, elapsed := r.clean(t, testdb.PostgresURL(t))
	admin, err := pgx.Connect(ctx, os.Getenv(testdb.EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	var summary []string
	for i, every := range []time.Duration{elapsed / 3, elapsed / 6, 150 * time.Millisecond, 40 * time.Millisecond, 10 * time.Millisecond} {
		base := testdb.PostgresURL(t)
		db := r.seed(t, base)
		app := fmt.Sprintf("crashtest-%d-%d", os.Getpid(), i)
		url := base + "&application_name=" + app
		statusDir := t.TempDir()

		type result struct {
			o   crashtest.Outcome
			err error
		}
		done := make(chan result, 1)
		go func() {
			o, err := crashtest.Run(ctx, r.bin, 0, r.args(url, statusDir, "run", "refresh-ips")...)
			done <- result{o, err}
		}()
		terminated, seen := 0, 0
		// Terminations come every `every`; the run's connections are
		// looked for far more often, since a run that finds its answers
		// cached can end before the first termination is due.
		tick, look := time.NewTicker(every), time.NewTicker(10*time.Millisecond)
		var res result
	loop:
		for {
			q := `SELECT 0, count(*) FROM pg_stat_activity WHERE application_name = $1`
			select {
			case res = <-done:
				break loop
			case <-look.C:
			case <-tick.C:
				q = `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)), count(*)
					FROM pg_stat_activity WHERE application_name = $1`
			}
			// Counting the run's connections proves the URL's
			// application_name reached the server.
			var n, all int
			if err := admin.QueryRow(ctx, q, app).Scan(&n, &all); err != nil {
				t.Fatal(err)
			}
			terminated += n
			seen += all
		}
		tick.Stop()
		look.Stop()
		if res.err != nil {
			t.Fatal(res.err)
		}
		if seen == 0 {
			t.Fatalf("every %v: no connection with application_name %s was ever seen; the URL's application_name is not used", every, app)
		}
		outcome := "completed"
		switch res.o.ExitCode {
		case 0:
		case 1:
			lines := strings.Split(strings.TrimSpace(res.o.Stderr), "\n")
			outcome = "failed: " + lines[len(lines)-1]
			if !strings.Contains(res.o.Stderr, "terminating connection") && !strings.Contains(res.o.Stderr, "conn closed") &&
				!strings.Contains(res.o.Stderr, "connection") {
				t.Errorf("every %v: exit 1 without naming the database problem:\n%s", every, res.o.Stderr)
			}
		default:
			t.Fatalf("every %v: exit %d\n%s", every, res.o.ExitCode, res.o.Stderr)
		}
		// A completed run may still have records whose GreyNoise lookup
		// failed (its quota counter lives in the database): they stay
		// stale, so the rerun asks again, and the tables must then equal
		// a clean run's in full.
		r.mustRun(t, "rerun after terminated connections", r.args(base, statusDir, "run", "refresh-ips"))
		got := read(t, db)
		equal(t, fmt.Sprintf("terminations every %v (%s)", every, outcome), want, got)
		summary = append(summary, fmt.Sprintf("every %v: %d backends terminated, %s, rerun completed, %d rows compared",
			every.Round(time.Millisecond), terminated, outcome, got.Rows()))
	}
	t.Logf("clean run %v, %d rows\n%s", elapsed.Round(time.Millisecond), want.Rows(), strings.Join(summary, "\n"))
}

// TestConcurrentSQLiteWritersIntegration runs two commands that write the
// same SQLite file at the same time (two refresh-ips runs; refresh-ips and
// backfill). Each must complete, or fail saying the database is locked;
// after a rerun of what failed the tables equal a clean run's.
func TestConcurrentSQLiteWritersIntegration(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 450)
	refresh := []string{"run", "refresh-ips"}
	backfill := []string{"backfill", "--batch-size", "40"}
	for _, pair := range []struct {
		name string
		a, b []string
	}{
		{"two refresh runs", refresh, refresh},
		{"refresh and backfill", refresh, backfill},
	} {
		t.Run(pair.name, func(t *testing.T) {
			// The clean run is the two commands one after the other.
			url := testdb.SQLiteURL(t)
			cleanDB := r.seed(t, url)
			r.mustRun(t, "clean run", r.args(url, t.TempDir(), pair.a...))
			r.mustRun(t, "clean run", r.args(url, t.TempDir(), pair.b...))
			want := read(t, cleanDB)

			url = testdb.SQLiteURL(t)
			db := r.seed(t, url)
			statusA, statusB := t.TempDir(), t.TempDir()
			cmds := [][]string{r.args(url, statusA, pair.a...), r.args(url, statusB, pair.b...)}
			outs := make(chan crashtest.Outcome, len(cmds))
			for _, args := range cmds {
				go func() {
					o, err := crashtest.Run(ctx, r.bin, 0, args...)
					if err != nil {
						o.ExitCode, o.Stderr = -1, err.Error()
					}
					outs <- o
				}()
			}
			failed := 0
			for range cmds {
				o := <-outs
				switch {
				case o.ExitCode == 0:
				case o.ExitCode == 1 && strings.Contains(o.Stderr, "database is locked"):
					failed++
				default:
					t.Fatalf("exit %d, neither done nor %q:\n%s", o.ExitCode, "database is locked", o.Stderr)
				}
			}
			if failed > 0 {
				// Rerunning both is what an operator would do, and
				// harmless for the one that completed.
				r.mustRun(t, "rerun", r.args(url, statusA, pair.a...))
				r.mustRun(t, "rerun", r.args(url, statusB, pair.b...))
			}
			got := read(t, db)
			equal(t, pair.name, want, got)
			t.Logf("%s: %d of 2 failed with database is locked; %d rows compared", pair.name, failed, got.Rows())
		})
	}
}

// TestInterruptAndRerunIntegration sends SIGINT to refresh-ips at random
// moments. The run must exit 130 (or 0 when it had finished), its status
// file must say "interrupted" with ips_processed equal to the addresses
// it committed to ip_inventory plus the dead letters it wrote, and a rerun
// must leave the tables of a clean run.
func TestInterruptAndRerunIntegration(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 450)
	want, elapsed := r.clean(t, testdb.SQLiteURL(t))
	seed := uint64(time.Now().UnixNano())
	t.Logf("interrupt point seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	codes := map[int]int{}
	compared, starts := 0, 0
	for i := range 12 {
		at := time.Duration(rng.Int64N(int64(elapsed)))
		url := testdb.SQLiteURL(t)
		db := r.seed(t, url)
		statusDir := t.TempDir()
		o, err := crashtest.Signal(ctx, r.bin, syscall.SIGINT, at, r.args(url, statusDir, "run", "refresh-ips")...)
		if err != nil {
			t.Fatal(err)
		}
		codes[o.ExitCode]++
		snap, ran := phaseSnapshot(t, statusDir)
		switch {
		case (o.ExitCode == 130 || o.ExitCode == -1) && o.Sent && !ran:
			// Interrupted while starting: nothing may have been written.
			// Exit -1 is a SIGINT that arrived before the Go runtime had
			// run main and installed the handler (a few milliseconds),
			// which ends the process at once.
			if n := count(t, db, "SELECT count(*) FROM ip_inventory"); n != 0 {
				t.Errorf("interrupt %d at %v: no status file, yet %d inventory rows were written", i, at, n)
			}
			starts++
		case o.ExitCode == 130 && o.Sent:
			if snap.Metrics.State != "interrupted" {
				t.Errorf("interrupt %d at %v: status state %q, want interrupted", i, at, snap.Metrics.State)
			}
			committed := count(t, db, "SELECT count(*) FROM ip_inventory") + count(t, db, "SELECT count(*) FROM cowrie_enrich_dead_letters")
			if snap.Metrics.IPsProcessed != committed {
				t.Errorf("interrupt %d at %v: ips_processed %d, but the run committed %d addresses and dead letters", i, at, snap.Metrics.IPsProcessed, committed)
			}
			if snap.Checkpoint.Committed != snap.Metrics.IPsProcessed {
				t.Errorf("interrupt %d at %v: checkpoint.committed %d, ips_processed %d", i, at, snap.Checkpoint.Committed, snap.Metrics.IPsProcessed)
			}
		case o.ExitCode == 0:
			if snap.Metrics.State != "completed" && snap.Metrics.State != "succeeded" && snap.Metrics.State != "done" {
				t.Logf("interrupt %d at %v: exit 0 with state %q", i, at, snap.Metrics.State)
			}
		default:
			t.Fatalf("interrupt %d at %v: exit %d (signal sent: %v), want 130 or 0\n%s", i, at, o.ExitCode, o.Sent, o.Stderr)
		}
		r.mustRun(t, "rerun after SIGINT", r.args(url, statusDir, "run", "refresh-ips"))
		got := read(t, db)
		compared += got.Rows()
		equal(t, fmt.Sprintf("SIGINT %d at %v, then rerun", i, at), want, got)
	}
	t.Logf("12 SIGINTs over a %v run: exit codes %v (%d while starting); %d rows compared (clean run: %d rows)", elapsed.Round(time.Millisecond), codes, starts, compared, want.Rows())
}

// phaseSnapshot reads the one phase file refresh-ips wrote in dir.
// It reports false when there is none: a run interrupted while starting
// (opening the database, migrating) never reaches its status sink.
func phaseSnapshot(t *testing.T, dir string) (status.Snapshot, bool) {
	t.Helper()
	var s status.Snapshot
	b, err := os.ReadFile(filepath.Join(dir, "refresh-ips.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s, true
}

func count(t *testing.T, db *store.DB, query string) int64 {
	t.Helper()
	var n int64
	err := db.Query(context.Background(), query, nil, func(scan func(...any) error) error { return scan(&n) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}
