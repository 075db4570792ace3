package cymru

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// TestSemaphoreLeaseExpiresIntegration: a holder that never releases (a
// killed worker) frees its slot when its lease ends, not before.
func TestSemaphoreLeaseExpiresIntegration(t *testing.T) {
	url := os.Getenv(testdb.EnvRedis)
	if url == "" {
		t.Fatalf("%s is not set: run ./scripts/test or export %s=redis://host:6379/0", testdb.EnvRedis, testdb.EnvRedis)
	}
	sem, err := newSemaphore(url, "test-lease:"+t.Name()+time.Now().Format(time.RFC3339Nano), 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sem.lease = 300 * time.Millisecond
	defer sem.close()
	defer sem.rdb.Del(context.Background(), sem.key)
	if _, err := sem.acquire(t.Context()); err != nil { // never released
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	// The deadline may fall during the Redis call, which wraps it.
	if _, err := sem.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second acquire within the lease = %v, want it to wait", err)
	}
	start := time.Now()
	release, err := sem.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if waited := time.Since(start); waited > sem.lease+maxPoll+100*time.Millisecond {
		t.Errorf("slot came back after %s, lease %s", waited, sem.lease)
	}
}
