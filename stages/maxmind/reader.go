package maxmind

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
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
	db      *geoip2.Reader
	country bool      // a Country database: looked up with Country, not City
	build   time.Time // metadata build epoch
	info    os.FileInfo
	refs    atomic.Int64
	log     *slog.Logger
}

// openReader opens path as the database option expects.
func openReader(option, path string, log *slog.Logger) (*reader, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	db, err := geoip2.Open(path)
	if err != nil {
		return nil, err
	}
	rd := &reader{db: db, build: db.Metadata().BuildTime(), info: info, log: log}
	rd.refs.Store(1)
	typ := db.Metadata().DatabaseType
	// Probe with the method this option will use: the library knows which
	// database types support which methods.
	probe := netip.IPv4Unspecified()
	var invalid geoip2.InvalidMethodError
	switch option {
	case optASN:
		_, err = db.ASN(probe)
	default:
		rd.country = strings.Contains(typ, "Country")
		if rd.country {
			_, err = db.Country(probe)
		} else {
			_, err = db.City(probe)
		}
	}
	if err != nil {
		_ = db.Close()
		if errors.As(err, &invalid) {
			return nil, &DatabaseTypeError{Option: option, Type: typ}
		}
		return nil, err
	}
	return rd, nil
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
					"type", rd.db.Metadata().DatabaseType, "build", rd.build)
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
