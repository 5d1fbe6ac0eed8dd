package protocol

import "fmt"

// MaxIDBytes is the longest id accepted, in bytes. Redis allows longer keys,
// but an id this long is almost surely a bug in the caller, and it would be
// copied into every request and reply.
const MaxIDBytes = 1 << 20

// BucketKey names one bucket: a window number and the rate-limited id.
// Elixir: {bucket, id}.
type BucketKey struct {
	// Bucket is the window number, usually now_ms / scale_ms.
	Bucket int64
	// ID is the rate-limited subject: any bytes, possibly empty.
	ID string
}

// BucketInfo is what a bucket holds. Elixir: {key, count, created, updated}.
type BucketInfo struct {
	// Key is the key the caller asked for.
	Key BucketKey
	// Count is the sum of the increments counted in this bucket.
	Count int64
	// Created is the now, in ms since the Unix epoch, of the first hit.
	Created int64
	// Updated is the now, in ms since the Unix epoch, of the latest hit.
	Updated int64
}

// Request is one call to the server goroutine. The set is closed: CountHit,
// GetBucket and DeleteBuckets (Hammer 6), and Hit, Inc, Set and Get
// (Hammer 7, hammer7.go) and Check (several limits, check.go) are the only
// implementations.
type Request interface {
	// Op names the operation as the Elixir library does, e.g. "count_hit".
	Op() string
	// Validate reports, wrapping ErrInvalid, why the request cannot be sent.
	Validate() error
	request()
}

// Reply is the answer to one Request. The set is closed, one reply type per
// request type.
type Reply interface {
	reply()
}

// CountHit adds Increment to the count of the bucket Key at time Now (ms
// since the Unix epoch) and answers with a CountHitReply holding the new count.
type CountHit struct {
	Key       BucketKey
	Now       int64
	Increment int64
}

// GetBucket reads one bucket without changing it and answers with a
// GetBucketReply.
type GetBucket struct {
	Key BucketKey
}

// DeleteBuckets deletes every bucket of ID and answers with a
// DeleteBucketsReply.
type DeleteBuckets struct {
	ID string
}

// CountHitReply answers CountHit.
type CountHitReply struct {
	// Count is the bucket's count after the hit.
	Count int64
}

// GetBucketReply answers GetBucket.
type GetBucketReply struct {
	// Bucket is nil when the bucket does not exist (Elixir {:ok, nil}).
	Bucket *BucketInfo
}

// DeleteBucketsReply answers DeleteBuckets.
type DeleteBucketsReply struct {
	// Deleted is the number of keys actually deleted.
	Deleted int64
}

func (CountHit) request()      {}
func (GetBucket) request()     {}
func (DeleteBuckets) request() {}

func (CountHitReply) reply()      {}
func (GetBucketReply) reply()     {}
func (DeleteBucketsReply) reply() {}

// Op returns "count_hit".
func (CountHit) Op() string { return "count_hit" }

// Op returns "get_bucket".
func (GetBucket) Op() string { return "get_bucket" }

// Op returns "delete_buckets".
func (DeleteBuckets) Op() string { return "delete_buckets" }

// Validate checks the id length. Any Now and any Increment (zero and
// negative included) are passed to Redis as given, as in Elixir.
func (r CountHit) Validate() error { return validateID(r.Key.ID) }

// Validate checks the id length.
func (r GetBucket) Validate() error { return validateID(r.Key.ID) }

// Validate checks the id length.
func (r DeleteBuckets) Validate() error { return validateID(r.ID) }

func validateID(id string) error {
	if len(id) > MaxIDBytes {
		return fmt.Errorf("%w: id is %d bytes long, the limit is %d", ErrInvalid, len(id), MaxIDBytes)
	}
	return nil
}
