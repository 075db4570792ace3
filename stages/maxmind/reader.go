package maxmind

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Option names, used in messages and errors.
const (
	optCity = "city_db"
	optASN  = "asn_db"
)

// reader is one opened database file. It is reference counted: the slot
// holding it owns one reference, and every batch using it holds one more,
// so the reader is closed by whoever drops the last reference: the slot
// when it is replaced while idle, or the last batch that still used it.
type reader struct {
	db      *maxminddb.Reader
	option  string    // optCity or optASN
	country bool      // a Country database: decoded as Country, not City
	build   time.Time // metadata build epoch
	info    os.FileInfo
	refs    atomic.Int64
	log     *slog.Logger

	// records caches decoded records by their offset in the data section.
	// Networks share records (all networks of a city at one accuracy, all
	// networks of an AS), and decoding a record costs several times the
	// tree search that finds it. (A sync.Map, lock-free to read, measured
	// three times slower here: its trie costs more cache misses than the
	// uncontended lock.) The cache belongs to this file: a replacement
	// gets a reader of its own.
	mu      sync.Mutex
	records map[uintptr]*record
}

// maxRecords bounds each reader's record cache (some eight megabytes); a full
// cache starts over.
const maxRecords = 1 << 15

// record is what the stage uses of one database record.
type record struct {
	found bool // the record holds data (geoip2's HasData)

	country, countryName, city string
	lat, lon                   float64
	coordinates                bool
	accuracyRadius             int

	asn    int64
	asnOrg string
}

// openReader opens path as the database option expects.
func openReader(option, path string, log *slog.Logger) (*reader, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	probed, err := checkType(option, path)
	if err != nil {
		return nil, err
	}
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, err
	}
	if m := db.Metadata; m.DatabaseType != probed.DatabaseType || m.BuildEpoch != probed.BuildEpoch || m.NodeCount != probed.NodeCount {
		_ = db.Close()
		return nil, errReplaced
	}
	rd := &reader{
		db: db, option: option, country: option == optCity && strings.Contains(db.Metadata.DatabaseType, "Country"),
		build: db.Metadata.BuildTime(), info: info, log: log, records: make(map[uintptr]*record),
	}
	rd.refs.Store(1)
	return rd, nil
}

// errReplaced means the file changed between the type check and the open;
// the next reload check opens the new file.
var errReplaced = errors.New("file replaced while opening")

// checkType opens path with geoip2, which knows which database types
// support which lookups, probes it with the method the option will use,
// and returns its metadata.
func checkType(option, path string) (maxminddb.Metadata, error) {
	db, err := geoip2.Open(path)
	if err != nil {
		return maxminddb.Metadata{}, err
	}
	defer db.Close()
	typ := db.Metadata().DatabaseType
	probe := netip.IPv4Unspecified()
	switch {
	case option == optASN:
		_, err = db.ASN(probe)
	case strings.Contains(typ, "Country"):
		_, err = db.Country(probe)
	default:
		_, err = db.City(probe)
	}
	var invalid geoip2.InvalidMethodError
	if errors.As(err, &invalid) {
		return maxminddb.Metadata{}, &DatabaseTypeError{Option: option, Type: typ}
	}
	return db.Metadata(), err
}

// last is the network of the previous lookup a batch made in one
// database, and its record (noRecord for a miss). Addresses of one network
// follow each other in real lists (a scanner's /24, a sorted list); they
// then need no tree search.
type last struct {
	network netip.Prefix
	rec     *record
}

// lookup returns the record for addr and the network it was found in;
// a record without data (found false) is a miss. prev is the batch's
// previous lookup in this database, updated.
func (rd *reader) lookup(addr netip.Addr, prev *last) (*record, netip.Prefix, error) {
	if prev.rec == nil || !prev.network.Contains(addr) {
		res := rd.db.Lookup(addr)
		if err := res.Err(); err != nil {
			return &noRecord, netip.Prefix{}, err
		}
		rec := &noRecord
		if res.Found() {
			var err error
			if rec, err = rd.cached(res); err != nil {
				return &noRecord, netip.Prefix{}, err
			}
		}
		// For a miss this is the empty part of the tree the search
		// ended in: every address in it misses too.
		*prev = last{network: res.Prefix(), rec: rec}
	}
	if !prev.rec.found {
		return &noRecord, netip.Prefix{}, nil
	}
	return prev.rec, prev.network, nil
}

// cached returns the record res points at, decoding it unless the cache
// has it.
func (rd *reader) cached(res maxminddb.Result) (*record, error) {
	off := res.Offset()
	rd.mu.Lock()
	rec := rd.records[off]
	rd.mu.Unlock()
	if rec != nil {
		return rec, nil
	}
	rec, err := rd.decode(res)
	if err != nil {
		return nil, err
	}
	rd.mu.Lock()
	if len(rd.records) >= maxRecords {
		clear(rd.records)
	}
	rd.records[off] = rec
	rd.mu.Unlock()
	return rec, nil
}

// noRecord is the answer of a miss.
var noRecord record

// decode reads a record into geoip2's model of the database, so that
// which records count as data stays geoip2's definition.
func (rd *reader) decode(res maxminddb.Result) (*record, error) {
	switch {
	case rd.option == optASN:
		var a geoip2.ASN
		if err := res.Decode(&a); err != nil {
			return nil, err
		}
		return &record{found: a.HasData(), asn: int64(a.AutonomousSystemNumber), asnOrg: a.AutonomousSystemOrganization}, nil
	case rd.country:
		var c geoip2.Country
		if err := res.Decode(&c); err != nil {
			return nil, err
		}
		return &record{found: c.HasData(), country: strings.ToUpper(c.Country.ISOCode), countryName: c.Country.Names.English}, nil
	}
	var c geoip2.City
	if err := res.Decode(&c); err != nil {
		return nil, err
	}
	rec := &record{found: c.HasData(), country: strings.ToUpper(c.Country.ISOCode), countryName: c.Country.Names.English,
		city: c.City.Names.English, accuracyRadius: int(c.Location.AccuracyRadius)}
	if c.Location.HasCoordinates() {
		rec.lat, rec.lon, rec.coordinates = *c.Location.Latitude, *c.Location.Longitude, true
	}
	return rec, nil
}

// acquire takes a reference, or reports false once the reader is closed or
// closing (its last reference is gone).
func (rd *reader) acquire() bool {
	for {
		n := rd.refs.Load()
		if n <= 0 {
			return false
		}
		if rd.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and closes the reader with the last one.
func (rd *reader) release() {
	if rd.refs.Add(-1) != 0 {
		return
	}
	if err := rd.db.Close(); err != nil {
		rd.log.Warn("close maxmind database", "build", rd.build, "err", err)
	}
}

// slot is one configured database option and the reader currently loaded
// for it (nil while the file is unavailable).
type slot struct {
	option string // optCity or optASN
	path   string // empty: not configured
	hint   string // the config key to set, for the warning
	cur    atomic.Pointer[reader]

	// Reload bookkeeping, used only under Stage.reloadMu.
	failed os.FileInfo // the file that last failed to open, warned about once
	warned bool        // a missing file was warned about
}

// acquire returns the current reader with a reference taken, or nil.
func (s *slot) acquire() *reader {
	for {
		rd := s.cur.Load()
		if rd == nil || rd.acquire() {
			return rd
		}
		// rd was swapped out and closed between the load and the
		// acquire; the slot already holds its successor.
	}
}

// swap installs rd (nil to unload) and drops the slot's reference to the
// previous reader, which closes once no batch uses it.
func (s *slot) swap(rd *reader) {
	if old := s.cur.Swap(rd); old != nil {
		old.release()
	}
}

// sameFile reports whether two stats describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// load opens the slot's file when it changed since it was loaded, and
// swaps it in. A database picked up after the first load is logged at Info;
// a missing file, or a file that does not open, is warned about once (until
// a good file loads) and the loaded reader, if any, stays.
func (s *slot) load(log *slog.Logger, first bool) {
	if s.path == "" {
		return
	}
	info, err := os.Stat(s.path)
	cur := s.cur.Load()
	switch {
	case err != nil && cur != nil:
		// The file went away; the loaded reader still works (its mapping
		// outlives the name) and a new file will be picked up.
		return
	case err == nil && cur != nil && sameFile(cur.info, info):
		return
	case err == nil && sameFile(s.failed, info):
		return // already warned about this file
	}
	if err == nil {
		var rd *reader
		if rd, err = openReader(s.option, s.path, log); err == nil {
			s.swap(rd)
			s.failed, s.warned = nil, false
			if !first {
				log.Info("loaded new maxmind database", "option", s.option, "path", s.path,
					"type", rd.db.Metadata.DatabaseType, "build", rd.build)
			}
			return
		}
		s.failed = info
	} else if s.warned {
		return
	}
	s.warned = true
	if cur != nil {
		log.Warn("maxmind database replacement does not open; keeping the loaded one",
			"option", s.option, "path", s.path, "build", cur.build, "err", err)
		return
	}
	log.Warn("maxmind database unavailable: download GeoLite2 with geoipupdate or set "+s.hint,
		"option", s.option, "path", s.path, "err", err)
}
