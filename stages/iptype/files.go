package iptype

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/oschwald/geoip2-golang/v2"
)

// file is one configured evidence file and the version loaded from it. The
// version is swapped atomically; a batch keeps the one it started with.
type file[T any] struct {
	option string // the config key, for messages
	path   string
	// parse turns the opened file into the evidence and the number of
	// entries it skipped as malformed.
	parse func(io.Reader) (T, int, error)
	cur   atomic.Pointer[version[T]]

	// Reload bookkeeping, used only under Stage.reloadMu.
	failed os.FileInfo // the version that last failed to parse, warned about once
	warned bool        // a missing file was warned about
}

type version[T any] struct {
	v    T
	info os.FileInfo
}

// get returns the loaded evidence and whether there is any.
func (f *file[T]) get() (T, bool) {
	if v := f.cur.Load(); v != nil {
		return v.v, true
	}
	var zero T
	return zero, false
}

// sameFile reports whether two stats describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// load parses the file when it changed since it was loaded, and swaps it
// in. A missing file, or a version that does not parse, is warned about
// once, and the loaded version, if any, stays: an operator replacing a list
// must not lose the evidence to a half-written download. The file is
// stat'ed through the handle it is parsed from, so the version recorded is
// the one parsed.
func (f *file[T]) load(log *slog.Logger, first bool) {
	fh, err := os.Open(f.path)
	var info os.FileInfo
	if err == nil {
		defer fh.Close()
		info, err = fh.Stat()
	}
	cur := f.cur.Load()
	if err != nil {
		// A file that went away leaves the loaded version serving.
		if cur == nil && !f.warned {
			f.warned = true
			log.Warn("evidence file unavailable; classifying without it", "option", f.option, "path", f.path, "err", err)
		}
		return
	}
	if (cur != nil && sameFile(cur.info, info)) || sameFile(f.failed, info) {
		return
	}
	v, bad, err := f.parse(fh)
	if err != nil {
		f.failed = info
		if cur != nil {
			log.Warn("evidence file replacement does not parse; keeping the loaded version",
				"option", f.option, "path", f.path, "err", err)
			return
		}
		log.Warn("evidence file does not parse; classifying without it", "option", f.option, "path", f.path, "err", err)
		return
	}
	f.cur.Store(&version[T]{v: v, info: info})
	f.failed, f.warned = nil, false
	if bad > 0 {
		log.Warn("skipped malformed entries of evidence file", "option", f.option, "path", f.path, "skipped", bad)
	}
	if !first {
		log.Info("loaded new evidence file", "option", f.option, "path", f.path)
	}
}

// rangeSet is a parsed range file and the classification its addresses
// get.
type rangeSet struct {
	ranges *ranges
	class  Classification
}

// rangeFile returns the file of a range option whose addresses get class.
func rangeFile(option, path string, parse func(io.Reader) (parsed, error), class Classification) *file[*rangeSet] {
	return &file[*rangeSet]{option: option, path: path, parse: func(r io.Reader) (*rangeSet, int, error) {
		p, err := parse(r)
		if err != nil {
			return nil, p.bad, err
		}
		return &rangeSet{ranges: buildRanges(p.prefixes), class: class}, p.bad, nil
	}}
}

// mmdbFile returns the file of a MaxMind database option. The database is
// read into memory rather than mapped, so a replaced version needs no
// close: it is freed once no batch uses it. probe calls the lookup the
// option uses, so a database of the wrong type is refused on load.
func mmdbFile(option, path string, probe func(*geoip2.Reader, netip.Addr) error) *file[*geoip2.Reader] {
	return &file[*geoip2.Reader]{option: option, path: path, parse: func(r io.Reader) (*geoip2.Reader, int, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, 0, fmt.Errorf("read: %w", err)
		}
		db, err := geoip2.OpenBytes(b)
		if err != nil {
			return nil, 0, err
		}
		if err := probe(db, netip.IPv4Unspecified()); err != nil {
			var invalid geoip2.InvalidMethodError
			if errors.As(err, &invalid) {
				return nil, 0, fmt.Errorf("holds a %q database: %w", db.Metadata().DatabaseType, ErrDatabaseType)
			}
			return nil, 0, err
		}
		return db, 0, nil
	}}
}
