// Package testdb gives tests a real, empty database of each dialect:
// a fresh PostgreSQL schema (dropped after the test) on the server named by
// COWRIE_ENRICH_TEST_POSTGRES, and a SQLite file in the test's temp dir.
// There are no mocks: integration tests run against the same engines users
// have. ./scripts/test (and .ci/run) start PostgreSQL and export the URL.
package testdb
