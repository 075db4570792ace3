package inventory

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
	"github.com/cowrie-enrich/cowrie-enrich/sinks/snapshots"
	"github.com/cowrie-enrich/cowrie-enrich/store"
)

// StageRefused is the dead-letter stage of records whose row the database
// refused.
const StageRefused = "inventory"

// A batch whose connection fails is written again, writeAttempts times in
// all, after retryBackoff, then twice that: long enough for a pool to
// replace a killed connection, short enough that a database that is really
// gone fails the run within a second.
const (
	writeAttempts = 3
	retryBackoff  = 200 * time.Millisecond
)

// firstAnalyze is how many ASNs a run touches before the sink first
// refreshes the statistics of asn_inventory: below a few hundred rows a
// scan of the table costs about what a probe of its index does.
const firstAnalyze = 128

// foldEvery is how many batches may record ASN counter changes as pending
// (PostgreSQL, see pgASNUpsert) before one folds them into asn_inventory:
// its counters lag a running refresh by at most that many batches, and
// are exact once the run ends.
const foldEvery = 20

// closeFoldTimeout bounds the fold of Close, which may run after the
// run's context has ended.
const closeFoldTimeout = 30 * time.Second

// maxRawBytes bounds the raw address kept in a dead letter: garbage input
// can be arbitrarily long, and the dead letter only has to identify it.
const maxRawBytes = 1000

var (
	_ pipeline.Sink     = (*Sink)(nil)
	_ pipeline.Windowed = (*Sink)(nil)
	_ pipeline.Closer   = (*Sink)(nil)
)

// Sink writes batches to the inventory tables.
type Sink struct {
	cfg    Config
	db     backend
	runID  string
	name   string
	now    func() time.Time
	logger *slog.Logger

	// exact holds the ASNs whose counters this sink recounted in this run;
	// from then on it moves them by each batch's changes instead of
	// recounting, so the cost of a batch follows the batch and not the size
	// of the ASNs it touches. The first recount also repairs counters an
	// older tool left wrong (upstream never maintained
	// total_session_count). Writers are serialised, so deltas stay exact.
	mu    sync.Mutex
	exact map[int64]bool
	// nextAnalyze is the size of exact at which the sink next refreshes
	// the statistics of asn_inventory (see backend.analyzeASNs). Doubling
	// it keeps them within a factor of two of a table the run grows from
	// nothing, at a handful of ANALYZEs per run.
	nextAnalyze int
	// offered holds, per ASN this run has written, which organisation
	// fields (asnRow.fields) its batches offered.
	offered map[int64]uint8
	// unfolded counts the batches committed since pending ASN counter
	// changes were last folded (see foldEvery); -1 before the first.
	unfolded int

	warnRetry sync.Once

	// ahead holds the batches Prepare staged, by first record, until
	// Write takes them: the runtime prepares a batch while Write of the
	// one before runs.
	ahead map[*pipeline.Record]*staged
	// inflight holds the addresses of each batch, by first record, from
	// the start of its Prepare to the end of its Write: the batches whose
	// transactions may be open beside one that Prepare works on.
	inflight map[*pipeline.Record]map[string]bool
}

// staged is a batch Prepare has begun: its plan, and the open transaction
// whose batch table holds its rows, waiting for the writer lock.
type staged struct {
	n        int // with the first record, identifies the batch
	p        *plan
	tx       batchTx
	kept     []*row
	refused  []refusal
	inserted bool // kept are in ip_inventory already (copier), not in the batch table
}

// New returns a sink writing to env.Store.
func New(env pipeline.Env, cfg *Config) (*Sink, error) {
	if env.Store == nil {
		return nil, errors.New("inventory sink needs a database")
	}
	env = env.WithDefaults()
	s := &Sink{cfg: *cfg, runID: env.RunID, name: env.Pipeline, now: env.Now, logger: env.Logger, exact: map[int64]bool{}, offered: map[int64]uint8{}, nextAnalyze: firstAnalyze, unfolded: -1}
	switch env.Store.Dialect {
	case store.Postgres:
		s.db = &pgBackend{pool: env.Store.Pool, fill: fills(store.Postgres, cfg)}
	case store.SQLite:
		s.db = &sqliteBackend{db: env.Store.SQL, fill: fills(store.SQLite, cfg)}
	default:
		return nil, fmt.Errorf("inventory: unsupported dialect %q", env.Store.Dialect)
	}
	return s, nil
}

// newSink adapts New to the registry's constructor type.
func newSink(env pipeline.Env, cfg *Config) (pipeline.Sink, error) {
	s, err := New(env, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Window asks the runtime for batches of batch_size records, or fewer after
// flush_interval.
func (s *Sink) Window() pipeline.Window {
	return pipeline.Window{Size: s.cfg.BatchSize, MaxWait: s.cfg.FlushInterval}
}

// Close rolls back the batches Prepare staged that were never written
// (the run failed or stopped), and folds the counter changes of the
// batches written since the last fold; the store itself belongs to the
// run. A fold that fails loses nothing: the changes stay pending until
// the next run's first batch folds them.
func (s *Sink) Close() error {
	s.mu.Lock()
	ahead := s.ahead
	s.ahead, s.inflight = nil, nil
	unfolded := s.unfolded > 0
	s.mu.Unlock()
	for _, a := range ahead {
		_ = a.tx.rollback(context.Background())
	}
	if unfolded {
		ctx, cancel := context.WithTimeout(context.Background(), closeFoldTimeout)
		defer cancel()
		if err := s.fold(ctx); err != nil {
			s.logger.Warn("could not add this run's last ASN counter changes to asn_inventory; the next run adds them", "err", err)
			return nil
		}
		s.mu.Lock()
		s.unfolded = 0
		s.mu.Unlock()
		s.vacuum(ctx)
	}
	return nil
}

var _ pipeline.Preparer = (*Sink)(nil)

// maxStaged bounds the batches staged and not yet written: the runtime
// prepares up to two batches ahead of the one it is about to write, so
// more means batches that will not be written, which are rolled back.
const maxStaged = 3

// Prepare stages b's rows in a transaction of their own while the batch
// before is written: on PostgreSQL the batch is copied into the
// connection's batch table, which takes neither the writer lock nor any
// row lock, and Write then takes the lock and upserts (a first run's
// batches are copied into ip_inventory itself: see prepare). Nothing is lost
// when it fails: Write does the whole batch itself.
func (s *Sink) Prepare(ctx context.Context, b pipeline.Batch) {
	st, ok := s.db.(stager)
	if !ok || len(b) == 0 {
		return
	}
	p := s.plan(b)
	ips := make(map[string]bool, len(p.rows))
	for _, w := range p.rows {
		ips[w.ip] = true
	}
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = map[*pipeline.Record]map[string]bool{}
	}
	s.inflight[b[0]] = ips
	s.mu.Unlock()
	a, err := s.prepare(ctx, st, b[0], p)
	if err != nil {
		s.logger.Debug("could not prepare a batch; Write does it all", "err", err)
		return
	}
	a.n = len(b)
	var stale []*staged
	s.mu.Lock()
	if len(s.ahead) >= maxStaged {
		for first, a := range s.ahead {
			stale = append(stale, a)
			delete(s.ahead, first)
		}
	}
	if s.ahead == nil {
		s.ahead = map[*pipeline.Record]*staged{}
	}
	s.ahead[b[0]] = a
	s.mu.Unlock()
	for _, a := range stale {
		_ = a.tx.rollback(context.WithoutCancel(ctx))
	}
}

// prepare opens p's transaction (batch key) and stages its rows. A batch
// of fresh rows only (the first run's batches) is copied straight into
// ip_inventory when the copy cannot wait on, or be waited on by, another
// batch in flight (none of their addresses, and no ASN row they could be
// inserting), so that Write has only the ASN rows and the sessions left to
// write. When that copy fails (an address stored since, say), the batch
// is staged as any other.
func (s *Sink) prepare(ctx context.Context, st stager, key *pipeline.Record, p *plan) (*staged, error) {
	tx, err := st.beginUnlocked(ctx)
	if err != nil {
		return nil, err
	}
	if c, ok := tx.(copier); ok && s.copyable(ctx, c, key, p.rows) {
		kept, refused, err := c.insertRows(ctx, p.now, p.rows)
		if err == nil {
			return &staged{p: p, tx: tx, kept: kept, refused: refused, inserted: true}, nil
		}
		_ = tx.rollback(context.WithoutCancel(ctx))
		s.logger.Debug("could not copy a batch of new addresses; staging it", "err", err)
		if tx, err = st.beginUnlocked(ctx); err != nil {
			return nil, err
		}
	}
	kept, refused, err := tx.stage(ctx, p.now, p.rows)
	if err != nil {
		_ = tx.rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return &staged{p: p, tx: tx, kept: kept, refused: refused}, nil
}

// copyable reports whether the rows of batch key can be copied into
// ip_inventory before the writer lock is taken: every row is fresh, none
// is an address of another batch in flight, and every ASN they point at
// is stored (committed), so the copy neither inserts an ASN row nor fails
// its foreign key. The ASNs this run has committed (exact) are stored;
// only the others are looked for.
func (s *Sink) copyable(ctx context.Context, c copier, key *pipeline.Record, rows []*row) bool {
	var asns []int64
	s.mu.Lock()
	for _, w := range rows {
		if !w.fresh || s.inflightElsewhere(key, w.ip) {
			s.mu.Unlock()
			return false
		}
		if w.asn != nil && !s.exact[w.asn.Number] {
			asns = append(asns, w.asn.Number)
		}
	}
	s.mu.Unlock()
	ok, err := c.asnsStored(ctx, slices.Compact(slices.Sorted(slices.Values(asns))))
	if err != nil {
		s.logger.Debug("could not look for a batch's ASN rows; staging it", "err", err)
	}
	return ok && err == nil
}

// inflightElsewhere reports whether a batch in flight other than key's
// holds ip. The caller holds s.mu.
func (s *Sink) inflightElsewhere(key *pipeline.Record, ip string) bool {
	for k, ips := range s.inflight {
		if k != key && ips[ip] {
			return true
		}
	}
	return false
}

// take returns the staging of b and forgets it, or nil.
func (s *Sink) take(b pipeline.Batch) *staged {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.ahead[b[0]]
	if a == nil || a.n != len(b) {
		return nil
	}
	delete(s.ahead, b[0])
	return a
}

// Write commits the batch in one transaction. When the database refuses
// the batch for a data error, the rows are retried one at a time and each
// refused row is kept as a dead letter (its records are marked rejected by
// stage "inventory"); Write then returns nil.
func (s *Sink) Write(ctx context.Context, b pipeline.Batch) error {
	if len(b) == 0 {
		return nil
	}
	start := time.Now()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, b[0])
		s.mu.Unlock()
	}()
	var p *plan
	ahead := s.take(b)
	if ahead != nil {
		p = ahead.p
	} else {
		p = s.plan(b)
	}
	refused, err := s.commitRetrying(ctx, p, false, ahead)
	if err != nil {
		if ctx.Err() != nil || !s.db.dataError(err) {
			return fmt.Errorf("inventory: upsert batch: %w", err)
		}
		s.logger.Debug("batch refused, retrying rows one at a time", "batch_size", len(b), "err", err)
		if refused, err = s.commitRetrying(ctx, p, true, nil); err != nil {
			return fmt.Errorf("inventory: upsert rows one at a time: %w", err)
		}
	}
	for _, rf := range refused {
		for _, r := range rf.row.records {
			r.Reject(StageRefused, rf.err)
			s.logger.Warn("row refused by the database, kept as dead letter", "ip", rf.row.ip, "err", rf.err)
		}
	}
	s.logger.Debug("batch committed", "batch_size", len(b), "rows", len(p.rows)-len(refused),
		"refused", len(refused), "rejected", len(p.dead), "elapsed", time.Since(start))
	return nil
}

// plan is a batch prepared for writing: one row per address and the dead
// letters of records earlier stages rejected.
type plan struct {
	now  time.Time
	rows []*row
	dead []deadLetter
}

// row is what one batch writes for one address. Several records of the
// same address are folded into one row as if they were written one after
// the other, because PostgreSQL cannot update a row twice in one statement.
type row struct {
	ip       string
	asn      *pipeline.ASN   // the last record's ASN that is set; nil keeps the stored one
	asns     []*pipeline.ASN // every ASN of the records, in batch order
	first    time.Time
	last     time.Time
	sessions int64 // 0: the records did not know, keep the stored values
	enriched bool
	ipType   string         // the classification's type; "" keeps the stored ip_types
	fresh    bool           // every record's source found the address absent from ip_inventory
	filled   bool           // every record's source found every session naming the address in source_ip
	meta     pipeline.Meta  // the first record's provenance
	doc      map[string]any // the records' documents merged, once a second record joins the first
	docJSON  []byte         // the document encoded, once the row is staged
	records  []*pipeline.Record
}

// deadLetter is one row of cowrie_enrich_dead_letters.
type deadLetter struct {
	stage, raw, reason string
}

// refusal is a row the database refused, with its error.
type refusal struct {
	row *row
	err error
}

// ipClassification is the enrichment key of the iptype stage's answer,
// upstream's ip_classification.
const ipClassification = "ip_classification"

// classified is what the iptype stage stores under ip_classification; the
// ip_types column is derived from it, so the column cannot disagree with
// the JSON the snapshots read.
type classified interface{ ClassifiedType() string }

func (s *Sink) plan(b pipeline.Batch) *plan {
	p := &plan{now: s.now()}
	byIP := make(map[string]*row, len(b))
	for _, r := range b {
		if r.Rejected() {
			p.dead = append(p.dead, newDeadLetter(r.ErrStage, r.Raw, r.Err))
			continue
		}
		meta := Meta(r, s.runID, s.name, p.now)
		ip := r.IP()
		w := byIP[ip]
		switch {
		case w == nil:
			w = &row{ip: ip, meta: meta, fresh: true, filled: true}
			byIP[ip] = w
			p.rows = append(p.rows, w)
		case w.doc == nil:
			// Document returns a new map, so the first record's becomes the
			// row's and later records of the address are merged into it.
			w.doc = Document(w.records[0], w.meta)
			fallthrough
		default:
			maps.Copy(w.doc, Document(r, meta))
		}
		w.records = append(w.records, r)
		w.fresh = w.fresh && r.NotInInventory
		// The source grouped sessions by its own spelling of the address;
		// only when that is the canonical one are its sessions exactly those
		// the fill statement matches (a repeat in another spelling may have
		// been dropped by dedupe, hint and all).
		w.filled = w.filled && r.SessionIPsFilled && r.Raw == ip
		if r.ASN != nil {
			w.asn = r.ASN
			w.asns = append(w.asns, r.ASN)
		}
		if r.Sessions > 0 {
			w.first, w.last, w.sessions = r.FirstSeen, r.LastSeen, r.Sessions
		}
		w.enriched = w.enriched || r.Enriched()
		if c, ok := r.Enrichment[ipClassification].(classified); ok {
			w.ipType = c.ClassifiedType()
		}
	}
	return p
}

// encode sets w.docJSON: the document of the row's one record, or the
// merged documents of several, keys sorted as encoding/json sorts a map's.
// A stage value that does not marshal is a bug in that stage; it costs the
// row (kept as a dead letter), not the run.
func (w *row) encode() error {
	if w.docJSON != nil {
		return nil
	}
	var err error
	buf := make([]byte, 0, 1024)
	if w.doc == nil {
		w.docJSON, err = AppendDocument(buf, w.records[0], &w.meta)
	} else {
		w.docJSON, err = appendMap(buf, w.doc)
	}
	if err != nil {
		w.docJSON = nil
	}
	return err
}

// encoding walks rows, encoding each one's enrichment as it goes (so a
// backend can encode while the database works on the rows before), and
// keeps the refusals of those that do not encode.
type encoding struct {
	rows    []*row
	kept    []*row
	refused []refusal
}

// next returns the next row that encodes, or nil after the last.
func (e *encoding) next() *row {
	for len(e.rows) > 0 {
		w := e.rows[0]
		e.rows = e.rows[1:]
		if err := w.encode(); err != nil {
			e.refused = append(e.refused, refusal{row: w, err: err})
			continue
		}
		e.kept = append(e.kept, w)
		return w
	}
	return nil
}

// addresses returns the rows' addresses.
func addresses(rows []*row) []string {
	ips := make([]string, len(rows))
	for i, w := range rows {
		ips[i] = w.ip
	}
	return ips
}

// deadLetters returns the dead letters of the row's records refused by
// the inventory stage with err.
func (w *row) deadLetters(err error) []deadLetter {
	out := make([]deadLetter, len(w.records))
	for i, r := range w.records {
		out[i] = newDeadLetter(StageRefused, r.Raw, err)
	}
	return out
}

// commitRetrying commits p, trying again up to writeAttempts times in all
// when the connection failed (a restarted server, a killed backend, a
// dropped network): the transaction was rolled back, and writing a plan
// again gives the same rows. The batches copied ahead are rolled back
// first (dropCopies). Data errors and a cancelled ctx are returned at
// once.
func (s *Sink) commitRetrying(ctx context.Context, p *plan, oneByOne bool, ahead *staged) ([]refusal, error) {
	for attempt := 1; ; attempt++ {
		refused, err := s.commit(ctx, p, oneByOne, ahead)
		ahead = nil // a retry begins afresh
		if err == nil || attempt == writeAttempts || ctx.Err() != nil || !s.db.connError(err) {
			return refused, err
		}
		s.dropCopies(ctx)
		s.db.reset()
		s.warnRetry.Do(func() {
			s.logger.Warn("database connection lost while writing a batch, retrying", "attempts", writeAttempts, "err", err)
		})
		t := time.NewTimer(retryBackoff << (attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// dropCopies rolls back the later batches Prepare copied into
// ip_inventory and forgets them, so that their Write does all the work
// itself. A batch that gave up waiting for a row may have waited for one
// of them: the runtime calls Prepare on goroutines of their own, so a
// later batch can copy an address before the earlier batch that also
// holds it has registered as in flight (copyable cannot see it), and that
// copy commits only after the earlier batch is written.
func (s *Sink) dropCopies(ctx context.Context) {
	var drop []*staged
	s.mu.Lock()
	for first, a := range s.ahead {
		if a.inserted {
			drop = append(drop, a)
			delete(s.ahead, first)
		}
	}
	s.mu.Unlock()
	for _, a := range drop {
		_ = a.tx.rollback(context.WithoutCancel(ctx))
	}
}

// commit writes p in one transaction. With oneByOne, each row is written
// under its own savepoint and the rows the database refuses are returned
// and kept as dead letters; otherwise any error aborts the transaction.
func (s *Sink) commit(ctx context.Context, p *plan, oneByOne bool, ahead *staged) ([]refusal, error) {
	tx, err := s.begin(ctx, ahead)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	// Rolling back after a commit is a no-op; it must run even when ctx is
	// cancelled, or the connection would stay in a transaction.
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck

	var done outcome
	switch {
	case ahead != nil:
		if done, err = s.upsertStaged(ctx, tx, p.now, ahead.kept, outcome{refused: ahead.refused}, ahead.inserted); err != nil {
			return nil, err
		}
	case !oneByOne:
		if done, err = s.upsert(ctx, tx, p.now, p.rows); err != nil {
			return nil, err
		}
	default:
		for _, w := range p.rows {
			o, err := s.upsertOne(ctx, tx, p.now, w)
			if err == nil {
				done.add(o)
				continue
			}
			if ctx.Err() != nil || !s.db.dataError(err) {
				return nil, err
			}
			done.refused = append(done.refused, refusal{row: w, err: err})
		}
	}
	dead := slices.Clone(p.dead)
	for _, rf := range done.refused {
		dead = append(dead, rf.row.deadLetters(rf.err)...)
	}
	recount, apply := done.counts()
	if err := tx.countASNs(ctx, p.now, recount); err != nil {
		return nil, fmt.Errorf("count ASN rows: %w", err)
	}
	if err := tx.applyDeltas(ctx, p.now, apply); err != nil {
		return nil, fmt.Errorf("count ASN rows: %w", err)
	}
	if err := tx.deadLetters(ctx, p.now, s.name, s.runID, dedupeDead(dead)); err != nil {
		return nil, fmt.Errorf("write dead letters: %w", err)
	}
	fold := s.foldDue()
	if fold {
		if err := tx.foldASNs(ctx); err != nil {
			return nil, fmt.Errorf("fold ASN counter changes: %w", err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	s.mu.Lock()
	s.unfolded++
	if fold {
		s.unfolded = 0
	}
	for _, a := range recount {
		s.exact[a] = true
	}
	for _, a := range done.asns {
		s.offered[a.number] |= a.fields()
	}
	analyze := len(s.exact) >= s.nextAnalyze
	if analyze {
		s.nextAnalyze = 2 * len(s.exact)
	}
	s.mu.Unlock()
	if fold {
		s.vacuum(ctx)
	}
	if analyze {
		// The batch is committed: failing to analyze costs speed, not data.
		if err := s.db.analyzeASNs(ctx); err != nil {
			s.logger.Warn("could not refresh the statistics of asn_inventory; writes may slow down as it grows", "err", err)
		}
	}
	return done.refused, nil
}

// foldDue reports whether the batch being written folds the pending ASN
// counter changes: the sink's first (which also folds those a stopped run
// left) and then every foldEvery-th.
func (s *Sink) foldDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unfolded < 0 || s.unfolded >= foldEvery-1
}

// fold adds the pending ASN counter changes to the counters in a
// transaction of its own.
func (s *Sink) fold(ctx context.Context) error {
	tx, err := s.db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if err := tx.foldASNs(ctx); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// vacuum cleans up after a committed fold (see backend.vacuumPending).
// Failing to costs speed, not data.
func (s *Sink) vacuum(ctx context.Context) {
	if err := s.db.vacuumPending(ctx); err != nil {
		s.logger.Warn("could not vacuum cowrie_enrich_asn_pending; folds may slow down until autovacuum does", "err", err)
	}
}

// begin returns the transaction of a batch holding the writer lock: the
// one Prepare opened (ahead), or a new one.
func (s *Sink) begin(ctx context.Context, ahead *staged) (batchTx, error) {
	if ahead == nil {
		return s.db.begin(ctx)
	}
	if err := ahead.tx.lock(ctx); err != nil {
		_ = ahead.tx.rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return ahead.tx, nil
}

// outcome is what upserting rows leaves for the end of the transaction:
// the rows refused before reaching the database, the ASNs whose counters
// are recounted once every row is written, the counter changes not yet
// applied, and the ASN rows written.
type outcome struct {
	refused []refusal
	recount []int64
	pending []asnDelta
	asns    []asnRow // the ASN rows written, recorded in offered on commit
}

func (o *outcome) add(other outcome) {
	o.refused = append(o.refused, other.refused...)
	o.recount = append(o.recount, other.recount...)
	o.pending = append(o.pending, other.pending...)
	o.asns = append(o.asns, other.asns...)
}

// counts returns the ASNs to recount, each once and in ascending order,
// and the pending changes added up per ASN (the order rows are locked in),
// leaving out those that cancel out.
func (o *outcome) counts() (recount []int64, apply []asnDelta) {
	recount = slices.Compact(slices.Sorted(slices.Values(o.recount)))
	for _, d := range sumDeltas(o.pending) {
		if d.ips != 0 || d.sessions != 0 {
			apply = append(apply, d)
		}
	}
	return recount, apply
}

// upsert writes rows in tx. It stages them (encoding their enrichment),
// reads what is stored for their addresses, works out how the ASN counters
// change, writes the ASN rows with the changes of the ASNs already exact
// in this run folded in, and then the rows (and their sessions). The other
// ASNs are recounted, and the changes of ASNs the rows leave applied, at
// the end of the transaction.
func (s *Sink) upsert(ctx context.Context, tx batchTx, now time.Time, rows []*row) (outcome, error) {
	var o outcome
	if len(rows) == 0 {
		return o, nil
	}
	rows, refused, err := tx.stage(ctx, now, rows)
	o.refused = refused
	if err != nil {
		return o, err
	}
	return s.upsertStaged(ctx, tx, now, rows, o, false)
}

// upsertStaged is upsert after tx.stage kept rows; o holds the refusals of
// the rows it did not. With inserted, the rows are fresh and were copied
// into ip_inventory instead (copier.insertRows).
func (s *Sink) upsertStaged(ctx context.Context, tx batchTx, now time.Time, rows []*row, o outcome, inserted bool) (outcome, error) {
	if len(rows) == 0 {
		return o, nil
	}
	ins, _ := tx.(inserter)
	known := rows
	if ins != nil {
		known = slices.DeleteFunc(slices.Clone(rows), func(w *row) bool { return w.fresh })
	}
	old := map[string]stored{}
	if len(known) > 0 {
		var err error
		if old, err = tx.existing(ctx, known); err != nil {
			return o, err
		}
	}
	var deltas []asnDelta
	for _, w := range rows {
		deltas = append(deltas, rowDeltas(old[w.ip], w)...)
	}
	var apply []asnDelta
	o.recount, apply = s.splitDeltas(deltas)
	asns, pending := asnRows(rows, apply)
	o.pending = pending
	s.markEnsured(asns)
	o.asns = asns
	if err := tx.upsertASNs(ctx, now, asns); err != nil {
		return o, err
	}
	if inserted {
		return o, nil // the copy wrote the rows and filled their sessions
	}
	if len(known) < len(rows) {
		var err error
		if known, err = s.insertFresh(ctx, ins, now, rows, known, old, &o); err != nil {
			return o, err
		}
	}
	return o, tx.upsertIPs(ctx, now, rows, known, old)
}

// insertFresh inserts the rows whose records all come from a source that
// found their address absent from ip_inventory, without reading what is
// stored for them first: a first run's rows cost one statement instead of
// a lookup and an upsert. Their ASN changes were counted as those of new
// rows. A row stored since (another writer, an earlier batch of this run)
// is not inserted; it is read now, its ASN changes are corrected in o,
// and it joins known, the rows left to upsert, which it returns.
func (s *Sink) insertFresh(ctx context.Context, ins inserter, now time.Time, rows, known []*row, old map[string]stored, o *outcome) ([]*row, error) {
	already, err := ins.insertFresh(ctx, now)
	if err != nil {
		return nil, err
	}
	var taken []*row
	for _, w := range rows {
		if w.fresh && already[w.ip] {
			taken = append(taken, w)
		}
	}
	if len(taken) == 0 {
		return known, nil
	}
	found, err := ins.existing(ctx, taken)
	if err != nil {
		return nil, err
	}
	var fix []asnDelta
	for _, w := range taken {
		old[w.ip] = found[w.ip]
		fix = append(fix, rowDeltas(found[w.ip], w)...)
		for _, d := range rowDeltas(stored{}, w) {
			fix = append(fix, asnDelta{asn: d.asn, ips: -d.ips, sessions: -d.sessions})
		}
	}
	recount, apply := s.splitDeltas(fix)
	o.recount = append(o.recount, recount...)
	o.pending = append(o.pending, apply...)
	if err := ins.unfresh(ctx, addresses(taken)); err != nil {
		return nil, err
	}
	return append(known, taken...), nil
}

// upsertOne writes one row under a savepoint, so that a refused row leaves
// the transaction usable for the next one.
func (s *Sink) upsertOne(ctx context.Context, tx batchTx, now time.Time, w *row) (outcome, error) {
	if err := tx.exec(ctx, "SAVEPOINT inventory_row"); err != nil {
		return outcome{}, err
	}
	o, err := s.upsert(ctx, tx, now, []*row{w})
	if err != nil {
		if rbErr := tx.exec(ctx, "ROLLBACK TO SAVEPOINT inventory_row"); rbErr != nil {
			return outcome{}, errors.Join(err, rbErr)
		}
		return outcome{}, err
	}
	return o, tx.exec(ctx, "RELEASE SAVEPOINT inventory_row")
}

// backend is one database dialect's way of writing a plan.
type backend interface {
	begin(ctx context.Context) (batchTx, error)
	// dataError reports whether err is the database refusing data (a
	// constraint, an overflow, a value too long), as opposed to the
	// connection or the schema failing: only data errors are worth retrying
	// row by row.
	dataError(err error) bool
	// connError reports whether err is the connection failing (closed,
	// reset, the backend terminated), after which the same transaction may
	// succeed on a new connection.
	connError(err error) bool
	// reset drops the idle connections after a connection error: a server
	// restart or a mass termination kills them all, and a retry must not
	// pick another dead one.
	reset()
	// analyzeASNs refreshes the planner's statistics of asn_inventory,
	// which a run can grow from nothing. PostgreSQL plans a connection's
	// foreign-key check of ip_inventory.current_asn once and keeps that
	// plan until the table's statistics change: planned while the table
	// was nearly empty, it scans the whole table for every inserted row
	// (0.9 ms a row at 4,000 ASNs, 95% of a 500-row batch's insert).
	analyzeASNs(ctx context.Context) error
	// vacuumPending removes the pending ASN counter changes a fold deleted.
	// Every batch adds a row per ASN it touches (about 2,800 at 5,000
	// addresses) and a fold deletes them all, so without autovacuum (or
	// between its rounds) the table keeps every deleted row and each fold
	// scans them all: after twenty 1M-address runs, 11M dead rows in
	// 650 MB, scanned by each of a run's folds.
	vacuumPending(ctx context.Context) error
}

// stager is a backend that can open a batch's transaction and stage its
// rows before taking the writer lock, for Prepare.
type stager interface {
	beginUnlocked(ctx context.Context) (batchTx, error)
}

// inserter is a batchTx that can insert a batch's fresh rows (row.fresh)
// on their own, before reading what is stored for the others.
type inserter interface {
	batchTx
	// insertFresh inserts the staged fresh rows whose address is not
	// stored and returns the addresses of the others.
	insertFresh(ctx context.Context, now time.Time) (map[string]bool, error)
	// unfresh makes the staged rows of ips rows to upsert.
	unfresh(ctx context.Context, ips []string) error
}

// copier is a batchTx that can copy new rows straight into ip_inventory,
// without the batch table, for Prepare.
type copier interface {
	batchTx
	// asnsStored reports whether asn_inventory holds every one of asns.
	asnsStored(ctx context.Context, asns []int64) (bool, error)
	// insertRows copies rows into ip_inventory as new rows, encoding their
	// enrichment, and fills their sessions (see fill); it returns the rows
	// it kept and the refusals of those whose enrichment does not encode.
	// An address already stored fails the copy.
	insertRows(ctx context.Context, now time.Time, rows []*row) ([]*row, []refusal, error)
}

// batchTx is an open transaction of a backend.
type batchTx interface {
	// lock takes the writer lock, unless the transaction holds it.
	lock(ctx context.Context) error
	// stage readies rows for upsertIPs, encoding their enrichment, and
	// returns those it kept and the refusals of those whose enrichment does
	// not encode.
	stage(ctx context.Context, now time.Time, rows []*row) ([]*row, []refusal, error)
	// existing returns what is stored for the rows' addresses, by address.
	existing(ctx context.Context, rows []*row) (map[string]stored, error)
	// upsertASNs ensures the ASN rows and adds each one's delta to its
	// counters, or records it as pending (see foldASNs).
	upsertASNs(ctx context.Context, now time.Time, asns []asnRow) error
	// upsertIPs writes the staged rows of known, all of them unless the
	// transaction is an inserter (old: what existing returned for them),
	// and, when configured, fills the sessions of the rows (see fill).
	upsertIPs(ctx context.Context, now time.Time, rows, known []*row, old map[string]stored) error
	// countASNs recomputes unique_ip_count and total_session_count of asns
	// from ip_inventory, dropping their pending changes, and refreshes
	// their last_seen.
	countASNs(ctx context.Context, now time.Time, asns []int64) error
	// applyDeltas adds the deltas to unique_ip_count and
	// total_session_count, or records them as pending (see foldASNs).
	applyDeltas(ctx context.Context, now time.Time, deltas []asnDelta) error
	// foldASNs adds the pending counter changes, every process's, to the
	// counters (PostgreSQL; SQLite has none pending).
	foldASNs(ctx context.Context) error
	deadLetters(ctx context.Context, now time.Time, pipelineName, runID string, dead []deadLetter) error
	exec(ctx context.Context, sql string) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// stored is what the sink needs of an existing ip_inventory row.
// enrichment is read only where the sink merges JSON itself (SQLite).
type stored struct {
	found      bool
	enrichment sql.NullString
	asn        sql.NullInt64
	sessions   sql.NullInt64
}

// rowDeltas is how writing w changes ASN counters, given the row as stored
// (the same rules as ipConflict: a missing ASN or session count keeps the
// stored one).
func rowDeltas(old stored, w *row) []asnDelta {
	var out []asnDelta
	if old.found && old.asn.Valid {
		out = append(out, asnDelta{asn: old.asn.Int64, ips: -1, sessions: -old.sessions.Int64})
	}
	newASN, sessions := old.asn, w.sessions
	if w.asn != nil {
		newASN = sql.NullInt64{Int64: w.asn.Number, Valid: true}
	}
	if w.sessions <= 0 && old.found {
		sessions = old.sessions.Int64
	}
	if newASN.Valid {
		out = append(out, asnDelta{asn: newASN.Int64, ips: 1, sessions: sessions})
	}
	return out
}

// asnRow is one asn_inventory row to ensure, with the first non-empty
// organisation data the batch offers for it and the change of its
// counters to apply with it. ensured: this run has stored the row and
// offered every field the batch offers already (see Sink.offered), so
// only the counters change.
type asnRow struct {
	number                 int64
	org, country, registry string
	ips, sessions          int64
	ensured                bool
}

// fields returns which organisation fields a offers: one bit each for
// org, country and registry.
func (a asnRow) fields() uint8 {
	var f uint8
	for i, v := range []string{a.org, a.country, a.registry} {
		if v != "" {
			f |= 1 << i
		}
	}
	return f
}

// markEnsured sets ensured on the ASN rows this run has stored (exact)
// whose offered fields it has all offered before: with organisation data
// first-writer-wins, offering them again changes nothing.
func (s *Sink) markEnsured(asns []asnRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range asns {
		asns[i].ensured = s.exact[a.number] && a.fields()&^s.offered[a.number] == 0
	}
}

// asnRows returns the ASN rows rows point at, in ascending order so that
// concurrent writers lock them in the same order, with the deltas of apply
// folded into their rows; the deltas of other ASNs (those the rows leave)
// are returned as pending.
func asnRows(rows []*row, apply []asnDelta) (asns []asnRow, pending []asnDelta) {
	byNum := make(map[int64]*asnRow)
	for _, w := range rows {
		for _, a := range w.asns {
			e := byNum[a.Number]
			if e == nil {
				e = &asnRow{number: a.Number}
				byNum[a.Number] = e
			}
			e.org = cmp.Or(e.org, a.Org)
			e.country = cmp.Or(e.country, a.Country)
			e.registry = cmp.Or(e.registry, a.Registry)
		}
	}
	for _, d := range apply {
		if e := byNum[d.asn]; e != nil {
			e.ips, e.sessions = d.ips, d.sessions
			continue
		}
		pending = append(pending, d)
	}
	asns = make([]asnRow, 0, len(byNum))
	for _, e := range byNum {
		asns = append(asns, *e)
	}
	slices.SortFunc(asns, func(a, b asnRow) int { return cmp.Compare(a.number, b.number) })
	return asns, pending
}

// fill is a statement that fills the sessions of a batch's addresses
// after its rows are written, taking the addresses as its one parameter.
type fill struct {
	sql string
	// nullSourceIP: the statement only touches sessions with a NULL
	// source_ip, so the addresses whose source found none (row.filled)
	// are left out, and a batch of those only skips it.
	nullSourceIP bool
}

// addresses returns the addresses of rows the statement is to look for.
func (f fill) addresses(rows []*row) []string {
	ips := make([]string, 0, len(rows))
	for _, w := range rows {
		if !f.nullSourceIP || !w.filled {
			ips = append(ips, w.ip)
		}
	}
	return ips
}

// fills returns the fill statements cfg asks for. The snapshots go first:
// they fill source_ip too, so the source_ip statement then only rewrites
// sessions that had their snapshots already, instead of every session
// twice.
func fills(d store.Dialect, cfg *Config) []fill {
	var out []fill
	if cfg.FillSnapshots {
		out = append(out, fill{sql: snapshots.FillSQL(d)})
	}
	if cfg.FillSessionIP {
		out = append(out, fill{sql: map[store.Dialect]string{store.Postgres: pgFillSessions, store.SQLite: sqliteFillSessions}[d], nullSourceIP: true})
	}
	return out
}

// asnDelta is a change of one ASN's unique_ip_count and
// total_session_count.
type asnDelta struct {
	asn, ips, sessions int64
}

// splitDeltas adds up the deltas per ASN and splits the touched ASNs
// into those to recount (not yet exact in this run) and the deltas of the
// others, leaving out ASNs whose counters do not change.
func (s *Sink) splitDeltas(deltas []asnDelta) (recount []int64, apply []asnDelta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sum := range sumDeltas(deltas) {
		switch {
		case !s.exact[sum.asn]:
			recount = append(recount, sum.asn)
		case sum.ips != 0 || sum.sessions != 0:
			apply = append(apply, sum)
		}
	}
	return recount, apply
}

// sumDeltas adds up the deltas per ASN, in ascending ASN order.
func sumDeltas(deltas []asnDelta) []asnDelta {
	sums := map[int64]asnDelta{}
	for _, d := range deltas {
		sum := sums[d.asn]
		sum.asn, sum.ips, sum.sessions = d.asn, sum.ips+d.ips, sum.sessions+d.sessions
		sums[d.asn] = sum
	}
	out := slices.Collect(maps.Values(sums))
	slices.SortFunc(out, func(a, b asnDelta) int { return cmp.Compare(a.asn, b.asn) })
	return out
}

func newDeadLetter(stage, raw string, err error) deadLetter {
	return deadLetter{stage: stage, raw: clean(raw, maxRawBytes), reason: clean(err.Error(), 0)}
}

// dedupeDead keeps the last dead letter of each (stage, raw): PostgreSQL
// cannot update a row twice in one statement.
func dedupeDead(dead []deadLetter) []deadLetter {
	type key struct{ stage, raw string }
	idx := make(map[key]int, len(dead))
	out := dead[:0:0]
	for _, d := range dead {
		k := key{d.stage, d.raw}
		if i, ok := idx[k]; ok {
			out[i] = d
			continue
		}
		idx[k] = len(out)
		out = append(out, d)
	}
	return out
}

// clean makes s storable as text in both databases: valid UTF-8 without
// NUL bytes (PostgreSQL refuses both), cut to at most limit bytes on a
// character boundary when limit > 0.
func clean(s string, limit int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if limit <= 0 || len(s) <= limit {
		return s
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit]
}
