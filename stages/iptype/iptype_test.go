package iptype

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/pipeline/pipelinetest"
)

func TestConformance(t *testing.T) {
	pipelinetest.Conformance(t, Spec, pipelinetest.Env("iptype"))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name        string
		mod         func(*Config)
		errContains string
	}{
		{"defaults", func(*Config) {}, ""},
		{"negative reload_check", func(c *Config) { c.ReloadCheck = -time.Second }, "reload_check"},
		{"list without path", func(c *Config) { c.CIDRLists = []CIDRList{{Label: "x"}} }, "cidr_lists[0]: path is empty"},
		{"list without label", func(c *Config) { c.CIDRLists = []CIDRList{{Path: "/x"}} }, "cidr_lists[0]: label is empty"},
		{"list of unknown type", func(c *Config) { c.CIDRLists = []CIDRList{{Path: "/x", Label: "x", Type: "datacentre"}} }, `type "datacentre"`},
		{"list of vpn", func(c *Config) { c.CIDRLists = []CIDRList{{Path: "/x", Label: "mullvad", Type: TypeVPN}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(c)
			err := c.Validate()
			if tt.errContains == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	tests := []struct {
		name        string
		parse       func(io.Reader) (parsed, error)
		in          string
		prefixes    int
		bad         int
		errContains string
	}{
		{"aws", parseAWS, awsFixture, 3, 1, ""},
		{"gcp", parseGCP, gcpFixture, 2, 0, ""},
		{"azure", parseAzure, azureFixture, 4, 0, ""},
		{"tor", parseLines, torFixture, 3, 0, ""},
		{"cidr list with comments and garbage", parseLines, "10.1.0.0/16 # office\n\n999.1.1.1\n2001:db8::/32\nfe80::1%eth0\n", 2, 2, ""},
		{"aws truncated", parseAWS, awsFixture[:60], 0, 0, "decode ip-ranges.json"},
		{"gcp not json", parseGCP, "<html>rate limited</html>", 0, 0, "decode cloud.json"},
		{"azure truncated", parseAzure, azureFixture[:100], 0, 0, "decode service tags"},
		{"aws file given as azure", parseAzure, awsFixture, 0, 0, "no usable prefix"},
		{"gcp file given as aws", parseAWS, gcpFixture, 0, 0, "no usable prefix"},
		{"tor list of garbage", parseLines, "<html>\n</html>\n", 0, 2, "2 bad entries"},
		{"empty list", parseLines, "", 0, 0, "no usable prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.parse(strings.NewReader(tt.in))
			if tt.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errContains) {
					t.Fatalf("err = %v, want one containing %q", err, tt.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(p.prefixes) != tt.prefixes || p.bad != tt.bad {
				t.Fatalf("got %d prefixes (%v), %d bad; want %d, %d", len(p.prefixes), p.prefixes, p.bad, tt.prefixes, tt.bad)
			}
		})
	}
}

func TestRanges(t *testing.T) {
	set := buildRanges([]netip.Prefix{
		netip.MustParsePrefix("20.36.0.0/14"),
		netip.MustParsePrefix("20.36.1.0/24"), // inside the /14: merged
		netip.MustParsePrefix("20.40.0.0/16"), // adjacent to the /14: merged
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"), // mapped: counts as IPv4
		netip.MustParsePrefix("2603:1000::/40"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("2700::/8"),
	})
	if got := set.size(); got != 6 {
		t.Errorf("size = %d, want 6 (overlapping and adjacent ranges merged)", got)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"20.36.0.0", true}, {"20.39.255.255", true}, {"20.40.255.255", true}, {"20.41.0.0", false}, {"20.35.255.255", false},
		{"192.0.2.7", true}, {"192.0.2.6", false}, {"192.0.2.8", false},
		{"198.51.100.200", true}, {"198.51.101.0", false},
		{"2603:1000::1", true}, {"2603:1000:ff:ffff:ffff:ffff:ffff:ffff", true}, {"2603:1000:100::", false},
		{"2001:db8::1", true}, {"2001:db8::2", false},
		{"27ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"2700::", true}, {"2800::", false}, {"26ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"0.0.0.0", false}, {"::", false}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	}
	for _, tt := range tests {
		if got := set.contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	all := buildRanges([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, ip := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::"} {
		if !all.contains(netip.MustParseAddr(ip)) {
			t.Errorf("/0 does not contain %s", ip)
		}
	}
}

// The precedence table: which classification wins when several pieces of
// evidence match one address.
func TestPrecedence(t *testing.T) {
	tor := Classification{IPType: TypeTor, Confidence: confidenceList, Source: SourceTorExits}
	aws := Classification{IPType: TypeCloud, Provider: "aws", Confidence: confidenceList, Source: SourceAWSRanges}
	vpnList := Classification{IPType: TypeVPN, Provider: "mullvad", Confidence: confidenceList, Source: SourceCIDRList}
	hostList := Classification{IPType: TypeHosting, Provider: "m247", Confidence: confidenceList, Source: SourceCIDRList}
	resList := Classification{IPType: TypeResidential, Provider: "isp-x", Confidence: confidenceList, Source: SourceCIDRList}
	tests := []struct {
		name     string
		sets     []Classification
		org      string
		wantType string
		provider string
		source   string
	}{
		{"nothing", nil, "", TypeUnknown, "", ""},
		{"vpn over tor", []Classification{tor, vpnList}, "", TypeVPN, "mullvad", SourceCIDRList},
		{"tor over cloud", []Classification{aws, tor}, "", TypeTor, "", SourceTorExits},
		{"cloud over hosting", []Classification{hostList, aws}, "", TypeCloud, "aws", SourceAWSRanges},
		{"hosting over residential", []Classification{resList, hostList}, "", TypeHosting, "m247", SourceCIDRList},
		{"tor list over cloud AS name", []Classification{tor}, "AMAZON-02", TypeTor, "", SourceTorExits},
		{"cloud AS name over residential list", []Classification{resList}, "DIGITALOCEAN-ASN", TypeCloud, "digitalocean", SourceASNOrg},
		{"range file beats AS name of the same type", []Classification{aws}, "GOOGLE-CLOUD-PLATFORM", TypeCloud, "aws", SourceAWSRanges},
		{"AS name cloud", nil, "GOOGLE-CLOUD-PLATFORM", TypeCloud, "gcp", SourceASNOrg},
		{"AS name hosting", nil, "Some Hosting Company LLC", TypeHosting, "", SourceASNOrg},
		{"AS name residential", nil, "Comcast Cable Communications, LLC", TypeResidential, "", SourceASNOrg},
		{"AS name unknown", nil, "Example Org", TypeUnknown, "", ""},
	}
	addr := netip.MustParseAddr("203.0.113.9")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev evidence
			for _, c := range tt.sets {
				ev.sets = append(ev.sets, &rangeSet{ranges: buildRanges([]netip.Prefix{netip.PrefixFrom(addr, 32)}), class: c})
			}
			got, err := ev.classify(addr, tt.org)
			if err != nil {
				t.Fatal(err)
			}
			if got.IPType != tt.wantType || got.Provider != tt.provider || got.Source != tt.source {
				t.Errorf("classify = %+v, want type %s provider %q source %q", got, tt.wantType, tt.provider, tt.source)
			}
		})
	}
	order := []string{TypeBogon, TypeVPN, TypeTor, TypeCloud, TypeHosting, TypeResidential, TypeUnknown}
	for i := 1; i < len(order); i++ {
		if Rank(order[i-1]) >= Rank(order[i]) {
			t.Errorf("Rank(%s) >= Rank(%s)", order[i-1], order[i])
		}
	}
}

// Every format, IPv4 and IPv6, through Process; bogons, rejected records
// and records without evidence.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.TorExits = writeFile(t, dir, "tor.txt", torFixture)
	cfg.AWSRanges = writeFile(t, dir, "ip-ranges.json", awsFixture)
	cfg.GCPRanges = writeFile(t, dir, "cloud.json", gcpFixture)
	cfg.AzureRanges = writeFile(t, dir, "ServiceTags_Public.json", azureFixture)
	cfg.CIDRLists = []CIDRList{{Path: writeFile(t, dir, "do.txt", "64.225.0.0/16\n2604:a880::/32\n"), Label: "digitalocean", Type: TypeCloud},
		{Path: writeFile(t, dir, "vpn.txt", "185.220.101.2\n"), Label: "mullvad", Type: TypeVPN}}
	s, _ := newStage(t, cfg, &now)

	withOrg := func(r *pipeline.Record, org string) *pipeline.Record {
		r.Set(pipeline.SourceMaxMind, &pipeline.MaxMindResult{ASNOrg: org})
		return r
	}
	withCymru := func(r *pipeline.Record, org string) *pipeline.Record {
		r.Set(pipeline.SourceCymru, &pipeline.CymruResult{ASNOrg: org})
		return r
	}
	bogon := rec("10.1.2.3")
	bogon.Validation = &pipeline.Validation{IsBogon: true, Reason: "private"}
	tests := []struct {
		name       string
		rec        *pipeline.Record
		wantType   string // "" means no classification stored
		provider   string
		source     string
		confidence float64
	}{
		{"tor v4", rec("185.220.101.1"), TypeTor, "", SourceTorExits, confidenceList},
		{"tor v6", rec("2a0b:f4c2::1"), TypeTor, "", SourceTorExits, confidenceList},
		{"vpn list beats tor list", rec("185.220.101.2"), TypeVPN, "mullvad", SourceCIDRList, confidenceList},
		{"aws v4", rec("52.95.1.2"), TypeCloud, "aws", SourceAWSRanges, confidenceList},
		{"aws v6", rec("2600:1f18::5"), TypeCloud, "aws", SourceAWSRanges, confidenceList},
		{"gcp v4", rec("34.1.209.1"), TypeCloud, "gcp", SourceGCPRanges, confidenceList},
		{"gcp v6", rec("2600:1900:8000::1"), TypeCloud, "gcp", SourceGCPRanges, confidenceList},
		{"azure v4", rec("40.71.3.4"), TypeCloud, "azure", SourceAzureRanges, confidenceList},
		{"azure v6", rec("2603:1000::9"), TypeCloud, "azure", SourceAzureRanges, confidenceList},
		{"cidr list", rec("2604:a880::1"), TypeCloud, "digitalocean", SourceCIDRList, confidenceList},
		{"maxmind AS name", withOrg(rec("198.51.100.1"), "Hetzner Online GmbH"), TypeCloud, "hetzner", SourceASNOrg, confidenceASName},
		{"cymru AS name", withCymru(rec("198.51.100.2"), "CHINANET-BACKBONE No.31,Jin-rong Street, CN"), TypeResidential, "", SourceASNOrg, confidenceResidential},
		{"answered, no evidence", withOrg(rec("198.51.100.3"), "Example Org"), TypeUnknown, "", "", 0},
		{"nothing answered", rec("198.51.100.4"), "", "", "", 0},
		{"bogon", bogon, TypeBogon, "", SourceValidate, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := classify(t, s, tt.rec)
			if tt.wantType == "" {
				if c != nil || tt.rec.Source(Key).State != pipeline.StateSkipped || tt.rec.Source(Key).Reason != ReasonNoEvidence {
					t.Fatalf("got %+v, source %+v; want skipped with %q", c, tt.rec.Source(Key), ReasonNoEvidence)
				}
				return
			}
			if c == nil {
				t.Fatalf("no classification; sources %+v", tt.rec.Sources)
			}
			if c.IPType != tt.wantType || c.Provider != tt.provider || c.Source != tt.source || c.Confidence != tt.confidence {
				t.Errorf("got %+v, want %s/%q/%s/%v", c, tt.wantType, tt.provider, tt.source, tt.confidence)
			}
			if !c.ClassifiedAt.Equal(now) {
				t.Errorf("classified_at = %v, want %v", c.ClassifiedAt, now)
			}
		})
	}

	rejected := rec("52.95.1.2")
	rejected.Reject("validate", errors.New("bad"))
	if classify(t, s, rejected) != nil || rejected.Sources != nil {
		t.Errorf("a rejected record was touched: %+v", rejected.Sources)
	}
}

// A missing file and a malformed one are warned about once and left out;
// the rest of the evidence still classifies.
func TestMissingAndMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.ReloadCheck = 0
	cfg.TorExits = dir + "/missing.txt"
	cfg.AWSRanges = writeFile(t, dir, "ip-ranges.json", awsFixture[:80])
	cfg.GCPRanges = writeFile(t, dir, "cloud.json", gcpFixture)
	cfg.AnonymousIPDB = writeFile(t, dir, "anon.mmdb", "not a database")
	cfg.CIDRLists = []CIDRList{{Path: writeFile(t, dir, "hosts.txt", "64.225.0.0/16\nnot-a-prefix\n"), Label: "x"}}
	s, logs := newStage(t, cfg, &now)
	for range 3 {
		now = now.Add(time.Second)
		if c := classify(t, s, rec("34.1.209.1")); c == nil || c.Provider != "gcp" {
			t.Fatalf("gcp address = %+v, want gcp", c)
		}
		if c := classify(t, s, rec("52.95.1.2")); c != nil {
			t.Fatalf("address of the malformed aws file = %+v, want nothing", c)
		}
	}
	out := logs.String()
	for _, want := range []string{"option=tor_exits", "option=aws_ranges", "option=anonymous_ip_db"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%d warnings with %s, want 1:\n%s", n, want, out)
		}
	}
	if !strings.Contains(out, "decode ip-ranges.json") {
		t.Errorf("the aws warning does not say why:\n%s", out)
	}
	// Malformed entries inside a good file are reported too.
	if !strings.Contains(out, "skipped=1") {
		t.Errorf("no warning about the skipped entry of the cidr list:\n%s", out)
	}
}

// A replaced file is picked up at the next batch after reload_check; a
// replacement that does not parse keeps the loaded version; a file that
// appears later is loaded.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.ReloadCheck = time.Minute
	cfg.TorExits = writeFile(t, dir, "tor.txt", "185.220.101.1\n")
	cfg.AzureRanges = dir + "/ServiceTags_Public.json" // not there yet
	s, logs := newStage(t, cfg, &now)

	isTor := func(ip string) bool {
		c := classify(t, s, rec(ip))
		return c != nil && c.IPType == TypeTor
	}
	if !isTor("185.220.101.1") || isTor("2a0b:f4c2::1") {
		t.Fatal("first version not loaded")
	}
	replaceFile(t, cfg.TorExits, "2a0b:f4c2::1\n")
	now = now.Add(30 * time.Second)
	if !isTor("185.220.101.1") {
		t.Fatal("reloaded before reload_check passed")
	}
	now = now.Add(31 * time.Second)
	if isTor("185.220.101.1") || !isTor("2a0b:f4c2::1") {
		t.Fatal("replaced file not picked up")
	}
	if !strings.Contains(logs.String(), "loaded new evidence file") {
		t.Errorf("no log of the reload:\n%s", logs)
	}

	replaceFile(t, cfg.TorExits, "<html>502 Bad Gateway</html>\n")
	now = now.Add(time.Minute)
	if !isTor("2a0b:f4c2::1") {
		t.Fatal("a replacement that does not parse unloaded the good version")
	}
	if !strings.Contains(logs.String(), "keeping the loaded version") {
		t.Errorf("no warning about the bad replacement:\n%s", logs)
	}

	replaceFile(t, cfg.AzureRanges, azureFixture)
	now = now.Add(time.Minute)
	if c := classify(t, s, rec("20.36.5.5")); c == nil || c.Provider != "azure" {
		t.Fatalf("file that appeared later = %+v, want azure", c)
	}
}

func TestMaxMindDatabases(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 11, 20, 12, 0, 0, 0, time.UTC)
	anon := dir + "/GeoIP2-Anonymous-IP.mmdb"
	writeMMDB(t, anon, "GeoIP2-Anonymous-IP", map[string]mmdbtype.Map{
		"198.51.100.0/28":  {"is_anonymous": mmdbtype.Bool(true), "is_anonymous_vpn": mmdbtype.Bool(true), "is_hosting_provider": mmdbtype.Bool(true)},
		"198.51.100.16/28": {"is_anonymous": mmdbtype.Bool(true), "is_tor_exit_node": mmdbtype.Bool(true)},
		"198.51.100.32/28": {"is_anonymous": mmdbtype.Bool(true), "is_residential_proxy": mmdbtype.Bool(true)},
		"2001:db8::/32":    {"is_anonymous": mmdbtype.Bool(true), "is_public_proxy": mmdbtype.Bool(true)},
	})
	isp := dir + "/GeoIP2-ISP.mmdb"
	writeMMDB(t, isp, "GeoIP2-ISP", map[string]mmdbtype.Map{
		"203.0.113.0/24": {"isp": mmdbtype.String("Deutsche Telekom AG"), "autonomous_system_number": mmdbtype.Uint32(3320)},
	})
	cfg := DefaultConfig()
	cfg.AnonymousIPDB, cfg.ISPDB = anon, isp
	s, logs := newStage(t, cfg, &now)
	tests := []struct {
		ip, wantType, source string
	}{
		{"198.51.100.1", TypeVPN, SourceAnonymousIP},
		{"198.51.100.17", TypeTor, SourceAnonymousIP},
		{"198.51.100.33", TypeResidential, SourceAnonymousIP},
		{"2001:db8::5", TypeVPN, SourceAnonymousIP},
		{"203.0.113.5", TypeResidential, SourceISP},
	}
	for _, tt := range tests {
		c := classify(t, s, rec(tt.ip))
		if c == nil || c.IPType != tt.wantType || c.Source != tt.source {
			t.Errorf("%s = %+v, want %s from %s", tt.ip, c, tt.wantType, tt.source)
		}
	}

	// An ISP database given as anonymous_ip_db is refused, not misread.
	cfg.AnonymousIPDB, cfg.ISPDB = isp, ""
	s2, logs2 := newStage(t, cfg, &now)
	if c := classify(t, s2, rec("198.51.100.1")); c != nil {
		t.Errorf("wrong database type classified: %+v", c)
	}
	if !strings.Contains(logs2.String(), "wrong database type") {
		t.Errorf("no warning about the database type:\n%s%s", logs2, logs)
	}
}

// classificationRef drops AppendJSON, so encoding/json writes it by
// reflection.
type classificationRef Classification

func TestClassificationAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := pipeline.At(time.Date(2025, 11, 20, 12, 0, 0, 123456000, time.UTC))
	for _, c := range []Classification{
		{},
		{IPType: "cloud", Provider: "AWS <us-east-1> & co", Confidence: 0.95, Source: "aws_ranges", ClassifiedAt: at},
		{IPType: "unknown", Confidence: 1e-7, Source: "heuristic\n\"quoted\""},
		{IPType: "tor", Provider: "São Paulo \u2028", Confidence: 1e21, ClassifiedAt: at},
	} {
		got, err := c.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(classificationRef(c))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("AppendJSON\n got %s\nwant %s", got, want)
		}
	}
	if _, err := (Classification{Confidence: math.NaN()}).AppendJSON(nil); err == nil {
		t.Error("AppendJSON of a NaN confidence: no error; want encoding/json's")
	}
}
