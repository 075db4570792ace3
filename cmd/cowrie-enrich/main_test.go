package main

import (
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const mine = 1 << 40
	debug.SetMemoryLimit(mine)
	limitMemory(func(string) string { return "1TiB" })
	if got := debug.SetMemoryLimit(-1); got != mine {
		t.Errorf("with GOMEMLIMIT set, the limit became %d; want it left at %d", got, mine)
	}
	limitMemory(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Errorf("without GOMEMLIMIT, the limit is %d; want %d", got, defaultMemoryLimit)
	}
}
