package geolite_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/cowrie-enrich/cowrie-enrich/internal/simulate/geolite"
)

var build = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func open(t *testing.T, write func(*bytes.Buffer) error) *geoip2.Reader {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := geoip2.OpenBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSampleReadsBack(t *testing.T) {
	nets := geolite.Sample()
	city := open(t, func(b *bytes.Buffer) error { return geolite.WriteCity(b, nets, build) })
	asn := open(t, func(b *bytes.Buffer) error { return geolite.WriteASN(b, nets, build) })
	if got := city.Metadata().DatabaseType; got != geolite.TypeCity {
		t.Errorf("city database type %q", got)
	}
	if got := asn.Metadata().DatabaseType; got != geolite.TypeASN {
		t.Errorf("asn database type %q", got)
	}
	for _, r := range []*geoip2.Reader{city, asn} {
		if got := r.Metadata().BuildTime(); !got.Equal(build) {
			t.Errorf("%s build %v, want %v", r.Metadata().DatabaseType, got, build)
		}
	}
	var v4, v6, cityOnly, asnOnly int
	for _, n := range nets {
		addr := n.Addr()
		if addr.Is4() {
			v4++
		} else {
			v6++
		}
		c, err := city.City(addr)
		if err != nil {
			t.Fatalf("%s: City: %v", addr, err)
		}
		if c.HasData() != n.HasGeo() {
			t.Errorf("%s: city HasData %v, want %v", addr, c.HasData(), n.HasGeo())
		}
		if n.HasGeo() {
			if c.Traits.Network != n.Prefix {
				t.Errorf("%s: city network %s, want %s", addr, c.Traits.Network, n.Prefix)
			}
			if c.Country.ISOCode != n.CountryISO || c.Country.Names.English != n.CountryName || c.City.Names.English != n.City {
				t.Errorf("%s: city record %q %q %q, want %+v", addr, c.Country.ISOCode, c.Country.Names.English, c.City.Names.English, n)
			}
			if c.Location.AccuracyRadius != n.AccuracyRadius || c.Location.Latitude == nil || *c.Location.Latitude != n.Latitude || *c.Location.Longitude != n.Longitude {
				t.Errorf("%s: location %+v, want %+v", addr, c.Location, n)
			}
		}
		a, err := asn.ASN(addr)
		if err != nil {
			t.Fatalf("%s: ASN: %v", addr, err)
		}
		if a.HasData() != (n.ASN != 0) || a.AutonomousSystemNumber != uint(n.ASN) || a.AutonomousSystemOrganization != n.ASNOrg {
			t.Errorf("%s: asn %+v, want %d %q", addr, a, n.ASN, n.ASNOrg)
		}
		switch {
		case n.HasGeo() && n.ASN == 0:
			cityOnly++
		case !n.HasGeo() && n.ASN != 0:
			asnOnly++
		}
	}
	if v4 == 0 || v6 == 0 || cityOnly == 0 || asnOnly == 0 {
		t.Errorf("sample lacks a case: v4=%d v6=%d city-only=%d asn-only=%d", v4, v6, cityOnly, asnOnly)
	}

	for _, miss := range []string{"8.8.8.8", "2001:4860::1"} {
		addr := netip.MustParseAddr(miss)
		c, err := city.City(addr)
		if err != nil || c.HasData() {
			t.Errorf("%s: City = %+v, %v; want a miss", miss, c, err)
		}
		a, err := asn.ASN(addr)
		if err != nil || a.HasData() {
			t.Errorf("%s: ASN = %+v, %v; want a miss", miss, a, err)
		}
	}
}

func TestCountryDatabase(t *testing.T) {
	nets := geolite.Sample()
	r := open(t, func(b *bytes.Buffer) error { return geolite.WriteCountry(b, nets, build) })
	c, err := r.Country(netip.MustParseAddr("81.2.69.1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Country.ISOCode != "GB" || c.Continent.Code != "EU" {
		t.Errorf("country record %+v", c)
	}
	if _, err := r.ASN(netip.MustParseAddr("81.2.69.1")); err == nil {
		t.Errorf("ASN method on a Country database did not fail")
	}
}

func TestWriteFilesReplaces(t *testing.T) {
	dir := t.TempDir()
	cityPath, asnPath, err := geolite.WriteFiles(dir, geolite.Sample(), build)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	newer := build.Add(24 * time.Hour)
	if _, _, err := geolite.WriteFiles(dir, geolite.Sample()[:1], newer); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Errorf("city file rewritten in place; want a new file renamed over it")
	}
	for _, p := range []string{cityPath, asnPath} {
		r, err := geoip2.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Metadata().BuildTime(); !got.Equal(newer) {
			t.Errorf("%s: build %v, want %v", p, got, newer)
		}
		r.Close()
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want the 2 databases and no temporary files", len(entries))
	}
	if _, _, err := geolite.WriteFiles(filepath.Join(dir, "missing"), geolite.Sample(), build); err == nil {
		t.Errorf("WriteFiles into a missing directory succeeded")
	}
}

func TestInvalidNetwork(t *testing.T) {
	var b bytes.Buffer
	if err := geolite.WriteCity(&b, []geolite.Network{{CountryISO: "GB"}}, build); err == nil {
		t.Errorf("WriteCity accepted a network without a prefix")
	}
}
