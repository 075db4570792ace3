package iptype

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

// Fixtures in each provider's real format (abridged).
const (
	awsFixture = `{
  "syncToken": "1700000000",
  "createDate": "2025-11-20-12-00-00",
  "prefixes": [
    {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON", "network_border_group": "ap-northeast-2"},
    {"ip_prefix": "52.95.0.0/16", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"},
    {"ip_prefix": "not-a-prefix", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"}
  ],
  "ipv6_prefixes": [
    {"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"}
  ]
}`
	gcpFixture = `{
  "syncToken": "1700000000000",
  "creationTime": "2025-11-20T12:00:00.000000",
  "prefixes": [
    {"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud", "scope": "africa-south1"},
    {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "africa-south1"}
  ]
}`
	azureFixture = `{
  "changeNumber": 330,
  "cloud": "Public",
  "values": [
    {"name": "AzureCloud", "id": "AzureCloud", "properties": {"changeNumber": 10, "region": "", "regionId": 0,
      "platform": "Azure", "systemService": "", "addressPrefixes": ["20.36.0.0/14", "2603:1000::/40"], "networkFeatures": ["API", "NSG"]}},
    {"name": "AzureCloud.eastus", "id": "AzureCloud.eastus", "properties": {"changeNumber": 4, "region": "eastus", "regionId": 32,
      "platform": "Azure", "systemService": "", "addressPrefixes": ["20.36.1.0/24", "40.71.0.0/16"], "networkFeatures": ["API"]}}
  ]
}`
	torFixture = `# TOR bulk exit list
185.220.101.1
185.220.101.2
2a0b:f4c2::1
`
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile writes content next to path and renames it over path, as an
// operator's download script does.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeMMDB writes a MaxMind database of dbType mapping each prefix to its
// record.
func writeMMDB(t testing.TB, path, dbType string, records map[string]mmdbtype.Map) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	for p, rec := range records {
		pr := netip.MustParsePrefix(p)
		ipnet := &net.IPNet{IP: pr.Addr().AsSlice(), Mask: net.CIDRMask(pr.Bits(), pr.Addr().BitLen())}
		if err := tree.Insert(ipnet, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log output safely for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newStage builds the stage with a clock the test moves and a log it reads.
func newStage(t testing.TB, cfg *Config, now *time.Time) (*Stage, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	env := pipelinetest.Env("iptype")
	env.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env.Now = func() time.Time { return *now }
	st, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s := st.(*Stage)
	t.Cleanup(func() { _ = s.Close() })
	return s, logs
}

// rec returns a validated, routable record for ip.
func rec(ip string) *pipeline.Record {
	r := pipeline.NewRecord(ip)
	r.Addr = netip.MustParseAddr(ip)
	r.Validation = &pipeline.Validation{}
	return r
}

// classify runs one record through s and returns its classification (nil
// when none was stored).
func classify(t testing.TB, s *Stage, r *pipeline.Record) *Classification {
	t.Helper()
	if _, err := s.Process(context.Background(), pipeline.Batch{r}); err != nil {
		t.Fatalf("Process: %v", err)
	}
	c, _ := r.Enrichment[Key].(*Classification)
	return c
}
