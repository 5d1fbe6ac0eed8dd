package httplimit

import (
	"encoding/json"
	"net/http"
)

// ProblemTypeQuotaExceeded is the problem type of Section 5.1 of
// draft-ietf-httpapi-ratelimit-headers-10 and -11, which Config.ProblemDetails
// answers a denied request with.
const ProblemTypeQuotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

// Problem is the problem-details object (RFC 9457) of a denied request
// with Config.ProblemDetails: the quota-exceeded problem type of the drafts
// (Section 5.1), with its extension member violated-policies.
type Problem struct {
	// Type is ProblemTypeQuotaExceeded.
	Type string `json:"type"`
	// Title is the problem type's registered title, "Quota Exceeded"
	// (Section 10.2.1).
	Title string `json:"title"`
	// Status is 429.
	Status int `json:"status"`
	// ViolatedPolicies names the limits that denied the request, as
	// RateLimit-Policy names them (Shadow limits never deny).
	ViolatedPolicies []string `json:"violated-policies"`
}

// problemHandler answers a denied request with v's Problem, as
// application/problem+json.
func problemHandler(v *verdict) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Problem{Type: ProblemTypeQuotaExceeded, Title: "Quota Exceeded",
			Status: http.StatusTooManyRequests, ViolatedPolicies: append([]string{}, v.violated...)}
		body, _ := json.Marshal(p) // strings and an int: never fails
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write(append(body, '\n'))
	})
}
