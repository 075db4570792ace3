package crashtest_test

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/crashtest"
	"github.com/cowrie-enrich/cowrie-enrich/internal/demodata"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// scenario is one command to kill and rerun.
type scenario struct {
	name string
	// args are the command's arguments before --db and the common flags.
	args []string
	// rerun is added to args for the run after a kill.
	rerun []string
	// kills is how many kill points to try.
	kills int
}

// slowed are the overrides that stretch a run of a few hundred addresses
// to about a second, in many small windows and commits, so random kill
// points land in every phase.
func slowed(svc *simulate.Services) []string {
	sets := []string{
		"stages.greynoise.with.rate=300",
		"stages.cymru.with.window.size=10",
		"stages.cymru.with.window.max_wait=50ms",
		"sink.with.batch_size=20",
		"sink.with.flush_interval=100ms",
	}
	sets = append(sets, svc.Sets()...)
	var args []string
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// TestKillAndRerunMatchesCleanRunIntegration kills refresh-ips and
// backfill with SIGKILL at random moments, reruns them to completion
// (backfill with --resume) and requires ip_inventory, asn_inventory and
// the session snapshots to equal those of an uninterrupted run, row by
// row.
func TestKillAndRerunMatchesCleanRunIntegration(t *testing.T) {
	ctx := context.Background()
	bin := crashtest.Build(t)
	svc, err := simulate.Start(t.TempDir(), simulate.Options{CymruLatency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := time.Now()
	sessions := demodata.Generate(17, 450, now)
	fresh := func(t *testing.T) (string, *store.DB) {
		url := testdb.SQLiteURL(t)
		db := testdb.Migrated(t, url)
		if err := demodata.Insert(ctx, db, sessions); err != nil {
			t.Fatal(err)
		}
		return url, db
	}
	seed := uint64(now.UnixNano())
	t.Logf("kill point seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	for _, sc := range []scenario{
		// The inventory sink fills the sessions' snapshots in the
		// transaction that writes their address, so no kill can leave an
		// enriched address (no longer stale) with sessions lacking them.
		{name: "refresh", args: []string{"run", "refresh-ips"}, kills: 22},
		{name: "backfill", args: []string{"backfill", "--batch-size", "40"}, rerun: []string{"--resume"}, kills: 10},
	} {
		t.Run(sc.name, func(t *testing.T) {
			common := func(url, statusDir string) []string {
				a := append([]string{}, sc.args...)
				a = append(a, "--db", url, "--status-dir", statusDir, "--progress", "never", "--verbose")
				return append(a, slowed(svc)...)
			}
			run := func(what string, args []string) {
				t.Helper()
				o, err := crashtest.Run(ctx, bin, 0, args...)
				if err != nil || o.ExitCode != 0 {
					t.Fatalf("%s: exit %d, %v\n%s", what, o.ExitCode, err, o.Stderr)
				}
			}
			read := func(db *store.DB) crashtest.Tables {
				t.Helper()
				tables, err := crashtest.Read(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				return tables
			}
			url, db := fresh(t)
			start := time.Now()
			run("clean run", common(url, t.TempDir()))
			elapsed := time.Since(start)
			want := read(db)
			if len(want["ip_inventory"]) < 50 || len(want["asn_inventory"]) < 5 {
				t.Fatalf("the clean run wrote %d addresses and %d ASNs; too few to prove anything", len(want["ip_inventory"]), len(want["asn_inventory"]))
			}

			phases := map[string]int{}
			compared := 0
			for i := range sc.kills {
				// The last tenth of a clean run is left out: a kill there
				// often lands after the process already exited.
				at := time.Duration(rng.Int64N(int64(elapsed) * 9 / 10))
				url, db := fresh(t)
				statusDir := t.TempDir()
				killed, err := crashtest.Run(ctx, bin, at, common(url, statusDir)...)
				if err != nil {
					t.Fatal(err)
				}
				phases[killed.Phase]++
				run("rerun after a kill in "+killed.Phase, append(common(url, statusDir), sc.rerun...))
				got := read(db)
				compared += got.Rows()
				if diff := crashtest.Diff(want, got, 10); len(diff) > 0 {
					t.Errorf("kill %d at %v (%s), then rerun: tables differ from the clean run:\n%s", i, at, killed.Phase, strings.Join(diff, "\n"))
				}
			}
			t.Logf("%s: %d kill points over a %v run, phases hit: %s; %d rows compared (clean run: %d rows)",
				sc.name, sc.kills, elapsed.Round(time.Millisecond), describe(phases), compared, want.Rows())
		})
	}
}

func describe(phases map[string]int) string {
	var parts []string
	for p, n := range phases {
		parts = append(parts, p+"="+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
