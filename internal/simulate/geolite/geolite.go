package geolite

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Database types written into the metadata; geoip2 readers pick their
// lookup methods by them.
const (
	TypeCity    = "GeoLite2-City"
	TypeCountry = "GeoLite2-Country"
	TypeASN     = "GeoLite2-ASN"
)

// File names WriteFiles uses, as geoipupdate names the downloads.
const (
	CityFile = "GeoLite2-City.mmdb"
	ASNFile  = "GeoLite2-ASN.mmdb"
)

// Network is one prefix and what the databases say about it. Zero fields
// are left out of the record, as MaxMind leaves out what it does not know.
type Network struct {
	Prefix netip.Prefix

	// Geography (City and Country databases). A network has a geography
	// record when HasGeo reports true.
	Continent   string // continent code, e.g. "EU"
	CountryISO  string // upper case ISO 3166-1 alpha-2
	CountryName string // English name
	City        string // English name; City databases only
	// Latitude, Longitude and AccuracyRadius form the location, written
	// (City databases only) when AccuracyRadius is not zero: MaxMind gives
	// every location a radius.
	Latitude       float64
	Longitude      float64
	AccuracyRadius uint16

	// Autonomous system (ASN database); a network has an ASN record when
	// ASN is not zero.
	ASN    uint32
	ASNOrg string
}

// HasGeo reports whether the network has a City/Country database record.
func (n Network) HasGeo() bool {
	return n.CountryISO != "" || n.City != "" || n.AccuracyRadius != 0
}

// Addr returns an address inside the network (its first host), for tests
// that need one.
func (n Network) Addr() netip.Addr {
	a := n.Prefix.Masked().Addr()
	if n.Prefix.Bits() < a.BitLen() {
		a = a.Next()
	}
	return a
}

// ErrEmptyPrefix is returned for a Network without a valid prefix.
var ErrEmptyPrefix = errors.New("network has no valid prefix")

// WriteCity writes a GeoLite2-City database of the networks that have a
// geography record, built at build.
func WriteCity(w io.Writer, nets []Network, build time.Time) error {
	return write(w, TypeCity, nets, build, cityRecord)
}

// WriteCountry writes a GeoLite2-Country database: the City records
// without city and location, as MaxMind's Country files have them.
func WriteCountry(w io.Writer, nets []Network, build time.Time) error {
	return write(w, TypeCountry, nets, build, countryRecord)
}

// WriteASN writes a GeoLite2-ASN database of the networks that have an ASN.
func WriteASN(w io.Writer, nets []Network, build time.Time) error {
	return write(w, TypeASN, nets, build, asnRecord)
}

// WriteFiles writes CityFile and ASNFile into dir and returns their paths.
// Existing files are replaced atomically (temporary file, then rename).
func WriteFiles(dir string, nets []Network, build time.Time) (cityPath, asnPath string, err error) {
	cityPath, asnPath = filepath.Join(dir, CityFile), filepath.Join(dir, ASNFile)
	if err := Replace(cityPath, func(w io.Writer) error { return WriteCity(w, nets, build) }); err != nil {
		return "", "", err
	}
	if err := Replace(asnPath, func(w io.Writer) error { return WriteASN(w, nets, build) }); err != nil {
		return "", "", err
	}
	return cityPath, asnPath, nil
}

// Replace writes path through write into a temporary file in the same
// directory and renames it over path, so a reader never sees a half-written
// file: what geoipupdate does when it installs a new database.
func Replace(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// write builds a tree of the networks record makes a value for (nil: the
// network is not in this database) and writes it to w.
func write(w io.Writer, dbType string, nets []Network, build time.Time, record func(Network) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		BuildEpoch:              build.Unix(),
		Description:             map[string]string{"en": "cowrie-enrich synthetic " + dbType + " (made-up data)"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", dbType, err)
	}
	for _, n := range nets {
		if !n.Prefix.IsValid() {
			return fmt.Errorf("build %s: %+v: %w", dbType, n, ErrEmptyPrefix)
		}
		v := record(n)
		if v == nil {
			continue
		}
		p := n.Prefix.Masked()
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(ipnet, v); err != nil {
			return fmt.Errorf("build %s: insert %s: %w", dbType, p, err)
		}
	}
	if _, err := tree.WriteTo(w); err != nil {
		return fmt.Errorf("build %s: write: %w", dbType, err)
	}
	return nil
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en)}
}

// countryRecord is the part City and Country databases share.
func countryRecord(n Network) mmdbtype.Map {
	if !n.HasGeo() {
		return nil
	}
	m := mmdbtype.Map{}
	if n.Continent != "" {
		m["continent"] = mmdbtype.Map{"code": mmdbtype.String(n.Continent), "names": names(n.Continent)}
	}
	if n.CountryISO != "" {
		c := mmdbtype.Map{"iso_code": mmdbtype.String(n.CountryISO)}
		if n.CountryName != "" {
			c["names"] = names(n.CountryName)
		}
		m["country"] = c
		m["registered_country"] = c
	}
	return m
}

func cityRecord(n Network) mmdbtype.Map {
	m := countryRecord(n)
	if m == nil {
		return nil
	}
	if n.City != "" {
		m["city"] = mmdbtype.Map{"names": names(n.City)}
	}
	if n.AccuracyRadius != 0 {
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(n.Latitude),
			"longitude":       mmdbtype.Float64(n.Longitude),
			"accuracy_radius": mmdbtype.Uint16(n.AccuracyRadius),
		}
	}
	return m
}

func asnRecord(n Network) mmdbtype.Map {
	if n.ASN == 0 {
		return nil
	}
	m := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n.ASN)}
	if n.ASNOrg != "" {
		m["autonomous_system_organization"] = mmdbtype.String(n.ASNOrg)
	}
	return m
}
