package mdebridge

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Status is the state of a sync run or of one of its steps.
type Status string

const (
	StatusRunning     Status = "running"
	StatusSucceeded   Status = "succeeded"
	StatusFailed      Status = "failed"
	StatusPartial     Status = "partial"     // a run where some steps failed
	StatusSkipped     Status = "skipped"     // a step whose dependency failed
	StatusInterrupted Status = "interrupted" // a run the process did not live to finish

	// StatusNotPermitted is a step for an optional feature the app is not
	// granted; it does not count towards the run's status.
	StatusNotPermitted Status = "not-permitted"
)

// SyncRun is one execution of the sync engine.
type SyncRun struct {
	ID         int64        `json:"id"`
	Trigger    string       `json:"trigger"` // cli, schedule, api, demo
	Full       bool         `json:"full"`
	Status     Status       `json:"status"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
	Steps      []StepResult `json:"steps"`

	// Owner ("host:pid") and HeartbeatAt form the lease of a running run.
	Owner       string    `json:"owner,omitempty"`
	HeartbeatAt time.Time `json:"-"`
}

// RunInProgressError says that another sync holds the store.
type RunInProgressError struct{ Run SyncRun }

func (e *RunInProgressError) Error() string {
	return fmt.Sprintf("a sync is already running (run %d by %s, started %s, alive %s ago)",
		e.Run.ID, e.Run.Owner, e.Run.StartedAt.Format(time.RFC3339), time.Since(e.Run.HeartbeatAt).Round(time.Second))
}

// StepResult is what one step of a run did.
type StepResult struct {
	Name       string         `json:"name"`
	Status     Status         `json:"status"`
	Items      int            `json:"items"`
	Retired    int            `json:"retired,omitempty"`
	APICalls   int            `json:"apiCalls"`
	CallsByAPI map[string]int `json:"callsByApi,omitempty"`
	StartedAt  time.Time      `json:"startedAt"`
	DurationMS int64          `json:"durationMs"`
	Error      string         `json:"error,omitempty"`
	// Checkpoint is the step's own resumption state, opaque to the engine.
	Checkpoint string `json:"-"`
}

// SyncStore records sync runs and their steps.
type SyncStore interface {
	// StartRun records a new running run and sets its ID. A run still
	// running is either stale (its process died: stale says so), and is then
	// marked interrupted, or alive, and StartRun returns *RunInProgressError.
	StartRun(ctx context.Context, run *SyncRun, stale func(SyncRun) bool) error
	// Heartbeat renews the lease of a running run.
	Heartbeat(ctx context.Context, runID int64) error
	// SaveStep records (or updates) the result of one step of a run.
	SaveStep(ctx context.Context, runID int64, step StepResult) error
	// FinishRun records the final status of a run.
	FinishRun(ctx context.Context, run *SyncRun) error
	// LastRuns returns the most recent runs, newest first, with their steps.
	LastRuns(ctx context.Context, n int) ([]SyncRun, error)
	// LastStepResults returns, per step name, the newest result of that step.
	LastStepResults(ctx context.Context) ([]StepResult, error)
	// LastCheckpoint returns the checkpoint of the newest run of a step that
	// saved one, and "" when there is none.
	LastCheckpoint(ctx context.Context, step string) (string, error)
}

// Counts is how many entities the store holds, by kind.
type Counts map[string]int

// StatusStore reports what the store holds.
type StatusStore interface {
	Counts(ctx context.Context) (Counts, error)
}

// APICalls counts upstream API calls by endpoint template. A sync step carries
// one in its context so that the clients it uses are counted against it.
type APICalls struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one call of api.
func (c *APICalls) Add(api string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[api]++
}

// Snapshot returns the counts so far and their total.
func (c *APICalls) Snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, v := range c.n {
		total += v
	}
	return maps.Clone(c.n), total
}

type apiCallsKey struct{}

// WithAPICalls returns a context whose upstream calls are counted in c.
func WithAPICalls(ctx context.Context, c *APICalls) context.Context {
	return context.WithValue(ctx, apiCallsKey{}, c)
}

// CountAPICall counts one call of api against the counter in ctx, if any.
func CountAPICall(ctx context.Context, api string) {
	if c, ok := ctx.Value(apiCallsKey{}).(*APICalls); ok {
		c.Add(api)
	}
}
