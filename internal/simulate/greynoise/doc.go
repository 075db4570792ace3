// Package greynoise is a fake GreyNoise API server on 127.0.0.1 for tests,
// benchmarks and simulations. It speaks the wire format of the real service
// (reference/protocols.md §2): the Community API (GET /v3/community/{ip})
// and the paid v3 IP lookups (GET /v3/ip/{ip}, POST /v3/ip), answering from
// a table of known addresses.
//
// Unlike httptest.NewServer with a hand-written handler, it polices its
// clients the way the real service does, and tells tests what it saw:
//
//   - a token bucket (Options.Rate, Options.Burst) answers requests above the
//     rate with 429 and counts them as rate violations;
//   - a daily lookup quota (Options.DailyQuota, per UTC day) answers lookups
//     past it with the documented "daily rate limit" 429 and counts them as
//     quota violations;
//   - every request is recorded with its arrival time, so a test can check
//     the busiest sliding window (MaxInWindow) rather than an average.
//
// Failures are produced on demand, per address (SetBehavior) or for every
// request (SetDefault): 400, 401 (a wrong key always gets it), 429 with or
// without Retry-After, the quota-spent 429, 500, slow and malformed
// answers. The server holds no package-level state: any number can run at
// once.
package greynoise
