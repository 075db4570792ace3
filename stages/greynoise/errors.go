package greynoise

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrKeyRejected is wrapped by the error Process returns when
	// GreyNoise refuses the API key; the run cannot usefully go on.
	ErrKeyRejected = errors.New("api key rejected")
	// ErrMalformedAnswer marks a record whose answer could not be decoded.
	ErrMalformedAnswer = errors.New("malformed answer")
	// ErrInvalidAddress marks a record GreyNoise refused as not a valid
	// routable address (HTTP 400).
	ErrInvalidAddress = errors.New("address refused as not routable")
	// ErrRateLimited marks a record still rate limited (HTTP 429) after
	// its attempts were spent.
	ErrRateLimited = errors.New("rate limited")
	// ErrQuotaExhausted is wrapped by *RateLimitError when GreyNoise says
	// the plan's daily quota is spent.
	ErrQuotaExhausted = errors.New("quota exhausted")
)

// KeyRejectedError is returned by Process when GreyNoise answers 401 or
// 403. It carries the status only: never the key.
type KeyRejectedError struct {
	Status int
}

func (e *KeyRejectedError) Error() string {
	return fmt.Sprintf("greynoise: api key rejected (HTTP %d): check GREYNOISE_API_KEY", e.Status)
}

// Unwrap lets errors.Is(err, ErrKeyRejected) hold.
func (e *KeyRejectedError) Unwrap() error { return ErrKeyRejected }

// StatusError is an answer with an unexpected HTTP status.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string { return fmt.Sprintf("unexpected HTTP %d", e.Status) }

// RateLimitError is a 429 answer: RetryAfter is the server's Retry-After
// (zero when absent); Quota says the body reported the plan's quota spent.
type RateLimitError struct {
	RetryAfter time.Duration
	Quota      bool
}

func (e *RateLimitError) Error() string {
	if e.Quota {
		return ErrQuotaExhausted.Error() + " (HTTP 429)"
	}
	return ErrRateLimited.Error() + " (HTTP 429)"
}

// Unwrap lets errors.Is find ErrQuotaExhausted or ErrRateLimited.
func (e *RateLimitError) Unwrap() error {
	if e.Quota {
		return ErrQuotaExhausted
	}
	return ErrRateLimited
}
