// Package greynoise provides the greynoise stage: it asks GreyNoise whether
// each routable address is a known internet scanner (noise) or a business
// service (RIOT), within the service's rate limit and daily quota.
//
// It speaks either the Community API (GET /v3/community/{ip}, one address
// per request, IPv4 only) or the paid v3 API (GET /v3/ip/{ip}, and POST
// /v3/ip for many addresses in one request). Answers are stored as
// enrichment.greynoise with upstream's keys; an address GreyNoise has not
// seen is {noise: false, riot: false, classification: "unknown"}.
//
// Invariants the stage keeps:
//
//   - Only eligible records (valid, not bogons, not rejected) whose
//     greynoise source is not already settled (a cache hit) are ever sent;
//     IPv6 is skipped on the Community API, which refuses it.
//   - Requests never exceed `rate`: every request waits on a
//     golang.org/x/time/rate limiter (burst 1 by default) and on a sliding
//     window of recent send times, so no one-second window holds more than
//     rate requests even when timers fire late. With redis_url set, every
//     request also waits for a GCRA limit in Redis (go-redis/redis_rate,
//     keyed by a hash of the API key), so all processes using the key
//     together stay under `rate`; a Redis error fails that record only.
//   - The daily quota (UTC day) is reserved before a lookup is sent, in a
//     counter shared by every process using the same key (Redis when
//     redis_url is set, else the cowrie_enrich_quota table), so two runs
//     together never exceed it. When quota is short, the records with the
//     most sessions are asked first.
//   - A 429 pauses every request of the stage for Retry-After; a 429 that
//     says the plan's quota is spent stops lookups until the quota period
//     ends, and the remaining records are skipped ("quota exhausted")
//     while the run goes on. A rejected key (401/403) fails the run with
//     one clear error. 5xx and timeouts are retried with exponential
//     backoff, then the record is marked failed.
//   - The API key never appears in logs, errors, status files or output:
//     it is held in a type that redacts itself.
package greynoise
