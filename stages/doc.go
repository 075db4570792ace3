// Package stages lists the built-in stages; each lives in its own package
// below this one (validate, dedupe, …), client and stage together.
package stages
