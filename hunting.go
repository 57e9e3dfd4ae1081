package mdebridge

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// HuntingColumn is one column of an advanced hunting result: its name and
// the service's type name (String, DateTime, Int64, Boolean, Double, Object …).
type HuntingColumn struct {
	Name string `json:"Name"`
	Type string `json:"Type"`
}

// HuntingResult is the answer to an advanced hunting query. Each row is the
// service's JSON object, kept as it came: values are not reinterpreted.
type HuntingResult struct {
	Schema  []HuntingColumn   `json:"Schema"`
	Results []json.RawMessage `json:"Results"`
	// Truncated says the result has as many rows as the service returns at
	// most (100,000): more rows may have matched.
	Truncated bool `json:"-"`
}

// HuntingQuerier runs advanced hunting queries.
type HuntingQuerier interface {
	RunHuntingQuery(ctx context.Context, query string) (*HuntingResult, error)
}

// HuntingQuotaError says that the tenant's advanced hunting quota is spent:
// the calls (45 a minute, 1,500 an hour) or, when CPU is set, the running
// time (10 minutes an hour, 3 hours a day).
type HuntingQuotaError struct {
	CPU        bool
	RetryAfter time.Duration // when the service says it frees up; 0 if it did not
	Message    string        // the service's words
	Err        error
}

func (e *HuntingQuotaError) Error() string {
	what := "advanced hunting call quota (45 a minute, 1,500 an hour) is spent"
	if e.CPU {
		what = "advanced hunting CPU quota (10 minutes of query time an hour, 3 hours a day) is spent"
	}
	msg := "the tenant's " + what
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf("; it frees up in %s", e.RetryAfter.Round(time.Second))
	}
	if e.Message != "" {
		msg += fmt.Sprintf(" (the service said: %s)", e.Message)
	}
	return msg
}

func (e *HuntingQuotaError) Unwrap() error { return e.Err }

// HuntingQueryError is a query the service refused: a syntax error, an
// unknown table or column, a result too large. Message is the service's.
type HuntingQueryError struct {
	Message string
	Err     error
}

func (e *HuntingQueryError) Error() string { return "advanced hunting refused the query: " + e.Message }
func (e *HuntingQueryError) Unwrap() error { return e.Err }
