package hammerredis

import "time"

// WithScriptClock returns opts whose Hammer 7 scripts read now instead of
// Redis TIME, so that tests can step time.
func WithScriptClock(opts Options, now func() time.Time) Options {
	opts.scriptClock = now
	return opts
}
