package cli

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cowrie-enrich/cowrie-enrich/pipeline"
)

// monitor watches one run: it is the runtime's Observer, feeds the
// Prometheus registry behind /metrics and the live page's /status.json.
type monitor struct {
	pipeline, runID string
	progress        *pipeline.Progress
	chain           []string // component ids in pipeline order, side sinks last

	reg          *prometheus.Registry
	recordsIn    *prometheus.CounterVec
	recordsOut   *prometheus.CounterVec
	batchSeconds *prometheus.HistogramVec
	failures     *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec

	mu         sync.Mutex
	components map[string]*componentStats
	recent     []recentError // newest last, at most maxRecent
	state      pipeline.RunState
}

const maxRecent = 20

type componentStats struct {
	Kind     string  `json:"kind"`
	ID       string  `json:"id"`
	In       int64   `json:"in"`
	Out      int64   `json:"out"`
	Batches  int64   `json:"batches"`
	Errors   int64   `json:"errors"`
	AvgMilli float64 `json:"avg_batch_ms"`
	total    time.Duration
}

type recentError struct {
	Input  string `json:"input"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
}

var _ pipeline.Observer = (*monitor)(nil)

func newMonitor(plan *pipeline.Plan, runID string, progress *pipeline.Progress) *monitor {
	m := &monitor{
		pipeline: plan.File.Name, runID: runID, progress: progress,
		reg:        prometheus.NewRegistry(),
		components: map[string]*componentStats{},
		state:      pipeline.RunRunning,
	}
	m.chain = append(m.chain, plan.Source.ID)
	for _, s := range plan.Stages {
		m.chain = append(m.chain, s.ID)
	}
	m.chain = append(m.chain, plan.Sink.ID)
	for _, s := range plan.SideSinks {
		m.chain = append(m.chain, s.ID)
	}
	labels := prometheus.Labels{"pipeline": m.pipeline}
	m.recordsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cowrie_enrich_records_in_total",
		Help: "Records given to a stage or the sink.", ConstLabels: labels}, []string{"kind", "component"})
	m.recordsOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cowrie_enrich_records_out_total",
		Help: "Records a stage passed on, or the sink committed.", ConstLabels: labels}, []string{"kind", "component"})
	m.batchSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cowrie_enrich_batch_duration_seconds",
		Help: "Time a stage or the sink spent on one batch.", ConstLabels: labels,
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"kind", "component"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cowrie_enrich_component_errors_total",
		Help: "Batches a stage or the sink failed (each fails the run).", ConstLabels: labels}, []string{"kind", "component"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cowrie_enrich_dead_letters_total",
		Help: "Records kept as dead letters, by the stage that rejected them and why.", ConstLabels: labels}, []string{"stage", "reason"})
	m.reg.MustRegister(m.recordsIn, m.recordsOut, m.batchSeconds, m.failures, m.deadLetters, progressCollector{m})
	return m
}

// Observe implements pipeline.Observer.
func (m *monitor) Observe(e pipeline.BatchEvent) {
	kind := string(e.Kind)
	m.recordsIn.WithLabelValues(kind, e.ID).Add(float64(e.In))
	m.recordsOut.WithLabelValues(kind, e.ID).Add(float64(e.Out))
	m.batchSeconds.WithLabelValues(kind, e.ID).Observe(e.Duration.Seconds())
	if e.Err != nil {
		m.failures.WithLabelValues(kind, e.ID).Inc()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.components[e.ID]
	if c == nil {
		c = &componentStats{Kind: kind, ID: e.ID}
		m.components[e.ID] = c
	}
	c.In += int64(e.In)
	c.Out += int64(e.Out)
	c.Batches++
	c.total += e.Duration
	c.AvgMilli = float64(c.total.Microseconds()) / 1000 / float64(c.Batches)
	if e.Err != nil {
		c.Errors++
	}
	if e.Kind != pipeline.KindSink {
		return
	}
	for _, r := range e.Batch {
		if !r.Rejected() {
			continue
		}
		reason := shortReason(r.Err)
		m.deadLetters.WithLabelValues(r.ErrStage, reason).Inc()
		m.recent = append(m.recent, recentError{Input: truncate(r.Raw, 64), Stage: r.ErrStage, Reason: reason})
		if len(m.recent) > maxRecent {
			m.recent = m.recent[len(m.recent)-maxRecent:]
		}
	}
}

// shortReason keeps label values few: the error's first clause, without
// quoted values and bounded in length.
func shortReason(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\"(\n"); i > 0 {
		s = s[:i]
	}
	return truncate(strings.TrimSpace(s), 60)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (m *monitor) finish(state pipeline.RunState) {
	m.mu.Lock()
	m.state = state
	m.mu.Unlock()
}

// progressCollector exports the run's progress and the counters and gauges
// stages report (provider requests, rate-limit waits, quota remaining,
// cache hits per tier) at scrape time.
type progressCollector struct{ m *monitor }

var (
	committedDesc = prometheus.NewDesc("cowrie_enrich_committed_records", "Records the sink committed in this run.", []string{"pipeline"}, nil)
	expectedDesc  = prometheus.NewDesc("cowrie_enrich_expected_records", "Records the source expects to deliver (-1 unknown).", []string{"pipeline"}, nil)
	valueDesc     = prometheus.NewDesc("cowrie_enrich_run_value", "A counter or gauge reported by a component, by name.", []string{"pipeline", "name"}, nil)
)

func (c progressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- committedDesc
	ch <- expectedDesc
	ch <- valueDesc
}

func (c progressCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.m.progress
	ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(p.Committed()), c.m.pipeline)
	ch <- prometheus.MustNewConstMetric(expectedDesc, prometheus.GaugeValue, float64(p.Total()), c.m.pipeline)
	for name, v := range p.Values() {
		ch <- prometheus.MustNewConstMetric(valueDesc, prometheus.GaugeValue, float64(v), c.m.pipeline, name)
	}
}

// liveStatus is /status.json.
type liveStatus struct {
	Pipeline       string            `json:"pipeline"`
	RunID          string            `json:"run_id"`
	State          string            `json:"state"`
	Started        time.Time         `json:"started"`
	ElapsedSeconds float64           `json:"elapsed_seconds"`
	Committed      int64             `json:"committed"`
	Total          int64             `json:"total"`
	PerSecond      float64           `json:"ips_per_second"`
	ETASeconds     float64           `json:"eta_seconds"` // -1 unknown
	Chain          []string          `json:"chain"`
	Components     []componentStats  `json:"components"`
	Values         map[string]int64  `json:"values"`
	RecentErrors   []recentError     `json:"recent_errors"`
	Links          map[string]string `json:"links"`
}

func (m *monitor) snapshot(now time.Time) liveStatus {
	n, total, perSecond, eta := rate(m.progress, now)
	s := liveStatus{
		Pipeline: m.pipeline, RunID: m.runID, Started: m.progress.Started.UTC(),
		ElapsedSeconds: now.Sub(m.progress.Started).Seconds(),
		Committed:      n, Total: total, PerSecond: perSecond, ETASeconds: eta.Seconds(),
		Chain: m.chain, Values: m.progress.Values(),
		Links: map[string]string{"metrics": "/metrics"},
	}
	if eta < 0 {
		s.ETASeconds = -1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.State = string(m.state)
	s.RecentErrors = append([]recentError{}, m.recent...)
	for _, id := range m.chain {
		if c, ok := m.components[id]; ok {
			s.Components = append(s.Components, *c)
		}
	}
	return s
}

//go:embed status.html
var statusPage []byte

func (m *monitor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m.snapshot(time.Now()))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'")
		_, _ = w.Write(statusPage)
	})
	return mux
}

// serve starts the metrics and status server on addr and returns a stop
// function that shuts it down. A port that cannot be bound is an error
// before the run starts.
func (m *monitor) serve(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics and live status", "url", "http://"+ln.Addr().String()+"/")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}
