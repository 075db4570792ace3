// Package memstat reads the process's peak resident memory (Linux only:
// elsewhere the peak reads as 0) and samples the peak Go heap, for
// benchmarks, which report both next to their throughput figures.
package memstat

import (
	"bufio"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ResetPeakRSS resets the kernel's peak resident set (VmHWM) to the current
// one, so the next PeakRSS covers only what follows.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS returns VmHWM from /proc/self/status in bytes; 0 where unavailable.
func PeakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapObjects is the runtime metric of the bytes held by live and
// not-yet-swept heap objects.
const heapObjects = "/memory/classes/heap/objects:bytes"

// SampleHeap samples the Go heap every interval until the returned stop
// function is called; stop returns the largest heap seen. It reads
// runtime/metrics, which does not stop the world.
func SampleHeap(interval time.Duration) (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: heapObjects}}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}
