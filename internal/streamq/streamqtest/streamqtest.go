// Package streamqtest gives redis_stream tests a fresh stream on the test
// Redis (COWRIE_ENRICH_TEST_REDIS), deleted when the test ends.
package streamqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cowrie-enrich/cowrie-enrich/internal/streamq"
	"github.com/cowrie-enrich/cowrie-enrich/internal/testdb"
)

// Stream returns the test Redis URL, a stream name no other test uses and
// a client. The stream is deleted and the client closed by t.Cleanup.
func Stream(t testing.TB) (url, stream string, rdb *redis.Client) {
	t.Helper()
	url = os.Getenv(testdb.EnvRedis)
	if url == "" {
		t.Fatalf("%s is not set: run ./scripts/test or export %s=redis://host:6379/0", testdb.EnvRedis, testdb.EnvRedis)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	stream = "test:" + t.Name() + ":" + hex.EncodeToString(b[:])
	rdb, err := streamq.Client(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb.Del(context.Background(), stream)
		rdb.Close()
	})
	return url, stream, rdb
}
