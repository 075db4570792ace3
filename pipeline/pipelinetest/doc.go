// Package pipelinetest helps test pipelines and custom components: a source
// that emits given addresses, a sink that collects what it is given, a
// stage built from a function, and Conformance, the check every stage,
// built-in or custom, should pass.
package pipelinetest
