package simulate

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/cymru"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/greynoise"
)

// Network is one network of the simulated internet and what every
// provider says about it.
type Network struct {
	Prefix      netip.Prefix
	Country     string // ISO 3166-1 alpha-2
	CountryName string
	City        string
	Lat, Lon    float64
	ASN         uint32
	Org         string
	Registry    string // lower case, as Cymru writes it
	Allocated   string // YYYY-MM-DD
	// NoMaxMindASN leaves the network out of the GeoLite2 ASN database,
	// as happens for young or small networks, so Cymru is asked.
	NoMaxMindASN bool
	// GreyNoise is the classification of the network's addresses:
	// "malicious" or "benign" mass scanners, or "" (never observed: 404).
	GreyNoise string
	// Actor is GreyNoise's name for the scanner.
	Actor string
}

// Networks returns the simulated internet: mass-scanner hosting, cloud
// providers, residential ISPs and research scanners in IPv4 and IPv6. The
// organisations are invented; the prefixes are only ever looked up in the
// simulated services on loopback.
func Networks() []Network {
	p := netip.MustParsePrefix
	return []Network{
		{Prefix: p("45.142.120.0/22"), Country: "RU", CountryName: "Russia", City: "Moscow", Lat: 55.7558, Lon: 37.6173, ASN: 64601, Org: "SIM-BULLETPROOF-HOSTING", Registry: "ripencc", Allocated: "2019-04-11", GreyNoise: "malicious", Actor: "unknown"},
		{Prefix: p("61.177.172.0/24"), Country: "CN", CountryName: "China", City: "Nanjing", Lat: 32.0617, Lon: 118.7778, ASN: 64602, Org: "SIM-CHINA-BACKBONE", Registry: "apnic", Allocated: "2001-05-17", GreyNoise: "malicious", Actor: "unknown"},
		{Prefix: p("218.92.0.0/16"), Country: "CN", CountryName: "China", City: "Suzhou", Lat: 31.3041, Lon: 120.5954, ASN: 64602, Org: "SIM-CHINA-BACKBONE", Registry: "apnic", Allocated: "2000-07-07", GreyNoise: "malicious", Actor: "unknown"},
		{Prefix: p("185.220.100.0/22"), Country: "DE", CountryName: "Germany", City: "Frankfurt am Main", Lat: 50.1109, Lon: 8.6821, ASN: 64603, Org: "SIM-TOR-RELAYS", Registry: "ripencc", Allocated: "2017-11-02", GreyNoise: "malicious", Actor: "Tor"},
		{Prefix: p("167.94.138.0/24"), Country: "US", CountryName: "United States", City: "Ann Arbor", Lat: 42.2808, Lon: -83.743, ASN: 64604, Org: "SIM-RESEARCH-SCANNER", Registry: "arin", Allocated: "2018-02-20", GreyNoise: "benign", Actor: "Sim Research Scanner"},
		{Prefix: p("198.235.24.0/24"), Country: "US", CountryName: "United States", City: "Santa Clara", Lat: 37.3541, Lon: -121.9552, ASN: 64605, Org: "SIM-INTERNET-CENSUS", Registry: "arin", Allocated: "2021-06-01", GreyNoise: "benign", Actor: "Sim Internet Census"},
		{Prefix: p("159.223.0.0/16"), Country: "SG", CountryName: "Singapore", City: "Singapore", Lat: 1.3521, Lon: 103.8198, ASN: 64606, Org: "SIM-CLOUD-COMPUTE", Registry: "arin", Allocated: "2020-09-10"},
		{Prefix: p("134.209.0.0/16"), Country: "NL", CountryName: "Netherlands", City: "Amsterdam", Lat: 52.3676, Lon: 4.9041, ASN: 64606, Org: "SIM-CLOUD-COMPUTE", Registry: "arin", Allocated: "2018-08-14", GreyNoise: "malicious", Actor: "unknown"},
		{Prefix: p("20.42.0.0/16"), Country: "US", CountryName: "United States", City: "Boydton", Lat: 36.6676, Lon: -78.3875, ASN: 64607, Org: "SIM-HYPERSCALE-CLOUD", Registry: "arin", Allocated: "2017-10-18"},
		{Prefix: p("177.54.0.0/16"), Country: "BR", CountryName: "Brazil", City: "São Paulo", Lat: -23.5505, Lon: -46.6333, ASN: 64608, Org: "SIM-TELECOM-BR", Registry: "lacnic", Allocated: "2010-03-22"},
		{Prefix: p("103.99.0.0/22"), Country: "VN", CountryName: "Vietnam", City: "Hanoi", Lat: 21.0278, Lon: 105.8342, ASN: 64609, Org: "SIM-BROADBAND-VN", Registry: "apnic", Allocated: "2016-12-01", NoMaxMindASN: true, GreyNoise: "malicious", Actor: "unknown"},
		{Prefix: p("41.216.0.0/16"), Country: "ZA", CountryName: "South Africa", City: "Johannesburg", Lat: -26.2041, Lon: 28.0473, ASN: 64610, Org: "SIM-HOME-ISP-ZA", Registry: "afrinic", Allocated: "2009-05-05", NoMaxMindASN: true},
		{Prefix: p("117.50.0.0/16"), Country: "IN", CountryName: "India", City: "Mumbai", Lat: 19.076, Lon: 72.8777, ASN: 64611, Org: "SIM-MOBILE-IN", Registry: "apnic", Allocated: "2008-01-15"},
		{Prefix: p("2a01:4f8::/32"), Country: "DE", CountryName: "Germany", City: "Falkenstein", Lat: 50.4779, Lon: 12.3713, ASN: 64612, Org: "SIM-DEDICATED-SERVERS", Registry: "ripencc", Allocated: "2006-04-03"},
		{Prefix: p("2400:8902::/32"), Country: "JP", CountryName: "Japan", City: "Tokyo", Lat: 35.6762, Lon: 139.6503, ASN: 64606, Org: "SIM-CLOUD-COMPUTE", Registry: "apnic", Allocated: "2014-02-27"},
		{Prefix: p("2602:80d:1000::/44"), Country: "US", CountryName: "United States", City: "", Lat: 37.751, Lon: -97.822, ASN: 64613, Org: "SIM-IPV6-SCANNER", Registry: "arin", Allocated: "2022-03-30", NoMaxMindASN: true},
	}
}

// Options shape the simulated services.
type Options struct {
	// CymruLatency is added before every bulk whois answer.
	CymruLatency time.Duration
	// GreyNoiseRate is the fake's token bucket in requests per second
	// (0: no limit).
	GreyNoiseRate float64
	// GreyNoiseBurst is the fake's bucket size (default 1).
	GreyNoiseBurst int
	// GreyNoiseKey is the API key the fake accepts ("" accepts any).
	GreyNoiseKey string
	// WhoisFaults and DNSFaults switch on the fakes' misbehaviour (resets,
	// garbage, SERVFAIL, silence, …) for reliability tests; their Table and
	// Addr are ignored, and WhoisFaults.Latency adds to CymruLatency.
	WhoisFaults cymru.WhoisOptions
	DNSFaults   cymru.DNSOptions
	// GreyNoiseRetryAfter and GreyNoiseSlowDelay shape the GreyNoise fake's
	// rate-limited and slow answers (greynoise.Options; zero: its defaults).
	GreyNoiseRetryAfter, GreyNoiseSlowDelay time.Duration
	// WhoisAddr, DNSAddr and GreyNoiseAddr are the loopback host:port
	// each service listens on; empty picks a free port.
	WhoisAddr, DNSAddr, GreyNoiseAddr string
	// Networks is the simulated internet; nil means Networks().
	Networks []Network
}

// Services are the running simulated providers: Team Cymru's bulk whois
// and DNS, GreyNoise's API, and a GeoLite2 City/ASN pair on disk.
type Services struct {
	WhoisAddr, DNSAddr, GreyNoiseURL string
	CityDB, ASNDB                    string

	Whois     *cymru.Whois
	DNS       *cymru.DNS
	GreyNoise *greynoise.Server
}

// Start writes the GeoLite2 files into dir and starts the services on
// loopback. Close the services when done.
func Start(dir string, opts Options) (*Services, error) {
	for _, a := range []string{opts.WhoisAddr, opts.DNSAddr, opts.GreyNoiseAddr} {
		if err := loopback(a); err != nil {
			return nil, err
		}
	}
	nets := opts.Networks
	if nets == nil {
		nets = Networks()
	}
	var geo []geolite.Network
	var routes []cymru.Route
	for _, n := range nets {
		g := geolite.Network{Prefix: n.Prefix, Continent: continent(n.Country), CountryISO: n.Country, CountryName: n.CountryName,
			City: n.City, Latitude: n.Lat, Longitude: n.Lon, AccuracyRadius: 50}
		if !n.NoMaxMindASN {
			g.ASN, g.ASNOrg = n.ASN, n.Org
		}
		geo = append(geo, g)
		routes = append(routes, cymru.Route{Prefix: n.Prefix, ASNs: []uint32{n.ASN}, Country: n.Country,
			Registry: n.Registry, Allocated: n.Allocated, ASName: n.Org + ", " + n.Country})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	city, asn, err := geolite.WriteFiles(dir, geo, time.Now())
	if err != nil {
		return nil, fmt.Errorf("write simulated GeoLite2 files: %w", err)
	}
	table := cymru.NewTable(routes...)
	s := &Services{CityDB: city, ASNDB: asn}
	wo, do := opts.WhoisFaults, opts.DNSFaults
	wo.Table, wo.Latency, wo.Addr = table, wo.Latency+opts.CymruLatency, opts.WhoisAddr
	do.Table, do.Addr = table, opts.DNSAddr
	if s.Whois, err = cymru.StartWhois(wo); err != nil {
		return nil, fmt.Errorf("start simulated Cymru whois: %w", err)
	}
	if s.DNS, err = cymru.StartDNS(do); err != nil {
		s.Whois.Close()
		return nil, fmt.Errorf("start simulated Cymru DNS: %w", err)
	}
	s.GreyNoise, err = greynoise.Start(greynoise.Options{Key: opts.GreyNoiseKey, Rate: opts.GreyNoiseRate, Burst: max(opts.GreyNoiseBurst, 1),
		Classify: func(ip string) (greynoise.Record, bool) { return classify(nets, ip) }, Addr: opts.GreyNoiseAddr,
		RetryAfter: opts.GreyNoiseRetryAfter, SlowDelay: opts.GreyNoiseSlowDelay})
	if err != nil {
		s.DNS.Close()
		s.Whois.Close()
		return nil, fmt.Errorf("start simulated GreyNoise: %w", err)
	}
	s.WhoisAddr, s.DNSAddr, s.GreyNoiseURL = s.Whois.Addr(), s.DNS.Addr(), s.GreyNoise.URL
	return s, nil
}

// Sets returns the --set overrides that point a pipeline's provider
// stages (by their default ids) at the simulated services.
func (s *Services) Sets() []string {
	return []string{
		"stages.maxmind.with.city_db=" + s.CityDB,
		"stages.maxmind.with.asn_db=" + s.ASNDB,
		"stages.cymru.with.whois_addr=" + s.WhoisAddr,
		"stages.cymru.with.dns_server=" + s.DNSAddr,
		"stages.greynoise.with.base_url=" + s.GreyNoiseURL,
	}
}

// Close stops the services.
func (s *Services) Close() {
	s.GreyNoise.Close()
	s.DNS.Close()
	s.Whois.Close()
}

// classify is GreyNoise's answer for an address of the simulated
// internet: the classification of its network, or not observed.
func classify(nets []Network, ip string) (greynoise.Record, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return greynoise.Record{}, false
	}
	a = a.Unmap()
	for _, n := range nets {
		if n.GreyNoise != "" && n.Prefix.Contains(a) {
			// Scanners were last seen on one of the past seven days.
			seen := time.Now().UTC().AddDate(0, 0, -int(a.As16()[15]%7)).Format(time.DateOnly)
			return greynoise.Record{Noise: true, Classification: n.GreyNoise, Name: n.Actor, LastSeen: seen}, true
		}
	}
	return greynoise.Record{}, false
}

// loopback refuses a listen address off the loopback interface: the
// simulated services are for this machine only.
func loopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q: the simulated services only listen on loopback (127.0.0.1 or [::1])", addr)
	}
	return nil
}

func continent(cc string) string {
	switch cc {
	case "RU", "DE", "NL":
		return "EU"
	case "CN", "SG", "VN", "IN", "JP":
		return "AS"
	case "US":
		return "NA"
	case "BR":
		return "SA"
	case "ZA":
		return "AF"
	}
	return ""
}
