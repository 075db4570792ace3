package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// Build compiles cmd/cowrie-enrich into a temporary directory of t and
// returns the binary's path.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cowrie-enrich")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cowrie-enrich/cowrie-enrich/cmd/cowrie-enrich").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Outcome is what one run of the binary did.
type Outcome struct {
	// Killed is true when the SIGKILL arrived before the process exited.
	Killed bool
	// Sent is true when the signal was sent before the process exited
	// (whether or not it ended the process).
	Sent bool
	// ExitCode is the process's exit code (-1 when killed).
	ExitCode int
	// Phase is where the run was when it ended: "startup" before any
	// component logged, else "source:<type>", "stage:<type>" or
	// "sink:<type>" of the last component line, or "exited".
	Phase  string
	Stderr string
	Stdout string
}

// Run starts bin with args and kills it with SIGKILL after killAfter (0:
// never), then waits for it to end.
func Run(ctx context.Context, bin string, killAfter time.Duration, args ...string) (Outcome, error) {
	return Signal(ctx, bin, syscall.SIGKILL, killAfter, args...)
}

// Signal starts bin with args, sends it sig after killAfter (0: never),
// then waits for it to end. Killed is true only when sig ended the
// process; a process that handles sig (SIGINT) exits with its own code.
func Signal(ctx context.Context, bin string, sig syscall.Signal, killAfter time.Duration, args ...string) (Outcome, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return Outcome{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var kill <-chan time.Time
	if killAfter > 0 {
		timer := time.NewTimer(killAfter)
		defer timer.Stop()
		kill = timer.C
	}
	var err error
	killed := false
	select {
	case err = <-done:
	case <-kill:
		killed = cmd.Process.Signal(sig) == nil
		err = <-done
	}
	o := Outcome{Killed: killed, Sent: killed, ExitCode: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
	if killed && cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
		o.Phase = LastPhase(o.Stderr)
		return o, nil
	}
	o.Killed = false
	o.Phase = "exited"
	if _, ok := err.(*exec.ExitError); ok {
		err = nil
	}
	return o, err
}

var componentAttr = regexp.MustCompile(`\b(source|stage|sink)=(\S+)`)

// LastPhase names the component of the last log line in stderr that
// carries a source=, stage= or sink= attribute ("startup" if none does).
func LastPhase(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if m := componentAttr.FindStringSubmatch(lines[i]); m != nil {
			return m[1] + ":" + m[2]
		}
	}
	return "startup"
}

// Tables are the rows a run leaves in ip_inventory, asn_inventory and
// session_summaries, keyed by table and primary key, timestamps left out.
type Tables map[string]map[string]string

// tableQueries select every column that records what was learnt: no
// created/updated/verified times, no first/last seen of an ASN (the time a
// run first met it). Columns are cast to text so both dialects compare.
var tableQueries = map[string]struct {
	columns int
	query   string
}{
	"ip_inventory": {8, `SELECT ip_address, coalesce(CAST(current_asn AS TEXT), ''), CAST(first_seen AS TEXT), CAST(last_seen AS TEXT),
		CAST(session_count AS TEXT), CAST(enrichment AS TEXT), coalesce(enrichment_version, ''), coalesce(CAST(ip_types AS TEXT), '')
		FROM ip_inventory`},
	"asn_inventory": {10, `SELECT CAST(asn_number AS TEXT), coalesce(organization_name, ''), coalesce(organization_country, ''), coalesce(rir_registry, ''),
		coalesce(asn_type, ''), CAST(is_known_hosting AS TEXT), CAST(is_known_vpn AS TEXT), CAST(unique_ip_count AS TEXT),
		CAST(total_session_count AS TEXT), CAST(enrichment AS TEXT) FROM asn_inventory`},
	"session_summaries": {7, `SELECT session_id, coalesce(source_ip, ''), coalesce(CAST(snapshot_asn AS TEXT), ''), coalesce(snapshot_country, ''),
		coalesce(snapshot_ip_type, ''), CASE WHEN enrichment_at IS NULL THEN 'no snapshot' ELSE 'snapshot' END, coalesce(CAST(enrichment AS TEXT), '')
		FROM session_summaries`},
}

// Read returns the tables of db.
func Read(ctx context.Context, db *store.DB) (Tables, error) {
	out := Tables{}
	for table, q := range tableQueries {
		rows := map[string]string{}
		err := db.Query(ctx, q.query, nil, func(scan func(...any) error) error {
			cols := make([]string, q.columns)
			dest := make([]any, len(cols))
			for i := range cols {
				dest[i] = &cols[i]
			}
			if err := scan(dest...); err != nil {
				return err
			}
			for i, c := range cols {
				if strings.HasPrefix(c, "{") {
					cols[i] = stripTimes(c)
				}
			}
			rows[cols[0]] = strings.Join(cols[1:], " | ")
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		out[table] = rows
	}
	return out, nil
}

// stripTimes drops the _meta key and every key ending in _at (cached_at,
// classified_at) from a JSON document at
// any depth and returns it re-encoded with sorted keys.
func stripTimes(doc string) string {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return doc
	}
	var strip func(any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "_meta" || strings.HasSuffix(k, "_at") {
					delete(x, k)
					continue
				}
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	b, _ := json.Marshal(v)
	return string(b)
}

// Rows counts the rows of every table.
func (t Tables) Rows() int {
	n := 0
	for _, rows := range t {
		n += len(rows)
	}
	return n
}

// Diff lists how got differs from want, at most limit lines.
func Diff(want, got Tables, limit int) []string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < limit {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	tables := make([]string, 0, len(want))
	for table := range want {
		tables = append(tables, table)
	}
	sort.Strings(tables)
	for _, table := range tables {
		w, g := want[table], got[table]
		if len(w) != len(g) {
			add("%s: %d rows, want %d", table, len(g), len(w))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if gv, ok := g[k]; !ok {
				add("%s %s: missing", table, k)
			} else if gv != w[k] {
				add("%s %s:\n  got  %s\n  want %s", table, k, gv, w[k])
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				add("%s %s: unexpected row", table, k)
			}
		}
	}
	return out
}
