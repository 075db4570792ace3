//go:build unix

package status

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// lockWait bounds how long a snapshot waits for another process's lock;
// holders keep it for one small read and write, so this is generous.
const (
	lockWait  = 2 * time.Second
	lockRetry = 10 * time.Millisecond
)

// lock takes an exclusive flock on path, creating it if needed. It polls
// with LOCK_NB so that ctx and lockWait bound the wait.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.NewTimer(lockWait)
	defer deadline.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				// Closing the descriptor releases the lock.
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-deadline.C:
			_ = f.Close()
			return nil, ErrLockBusy
		case <-time.After(lockRetry):
		}
	}
}
