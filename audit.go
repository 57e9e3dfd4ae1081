package mdebridge

import (
	"context"
	"encoding/json"
	"time"
)

// Audit results: what became of one request on one target.
const (
	AuditRequested = "requested" // about to call MDE (written first, so a crash leaves a trace)
	AuditCreated   = "created"   // MDE created a new action
	AuditJoined    = "joined"    // an equal action was already pending: joined, nothing new issued
	AuditFailed    = "failed"    // MDE refused or the call failed
	AuditDryRun    = "dry-run"   // nothing was sent
	AuditCompleted = "completed" // a waited-for action reached a final status
	AuditDone      = "done"      // a synchronous change (tags, indicators) was applied
)

// AuditEntry is one line of the audit log: who did what to which target,
// when, why (the comment), and what came of it. The log is append-only.
type AuditEntry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	Operation  string          `json:"operation"` // isolate, scan, indicators.import, actions.cancel …
	TargetID   string          `json:"targetId,omitempty"`
	TargetName string          `json:"targetName,omitempty"`
	Comment    string          `json:"comment"`
	RequestID  string          `json:"requestId"` // mdebridge's id of the request (shared by a bulk job's targets)
	ActionID   string          `json:"actionId,omitempty"`
	Result     string          `json:"result"`
	Status     string          `json:"status,omitempty"` // the action's MDE status when known
	Error      string          `json:"error,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
}

// AuditFilter selects audit entries. Empty fields do not filter.
type AuditFilter struct {
	Since     time.Time
	Actor     string
	TargetID  string
	RequestID string
	Operation string
	Limit     int // newest first; 0 means no limit
}

// AuditStore keeps the audit log.
type AuditStore interface {
	// AppendAudit records entries in order, setting their ID (and At when
	// zero), in one transaction.
	AppendAudit(ctx context.Context, entries ...*AuditEntry) error
	FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// Bulk job and target states.
const (
	BulkRunning     = "running"
	BulkDone        = "done"
	BulkInterrupted = "interrupted"

	TargetPending = "pending" // not yet sent
	TargetSending = "sending" // sent or about to be, answer not recorded: in doubt on resume
	TargetIssued  = "issued"  // MDE answered with an action (created or joined)
	TargetFailed  = "failed"  // MDE refused; not retried on resume
)

// BulkJob is a response operation over many machines, recorded so that an
// interrupted run resumes without issuing any action twice.
type BulkJob struct {
	ID        string          `json:"id"`
	Operation string          `json:"operation"`
	Request   json.RawMessage `json:"request"` // the ActionRequest, to resume with
	Actor     string          `json:"actor"`
	Comment   string          `json:"comment"`
	Status    string          `json:"status"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Targets   []BulkTarget    `json:"targets,omitempty"`
	// Counts by target state (filled by ListBulkJobs and GetBulkJob).
	Counts map[string]int `json:"counts"`
}

// BulkTarget is one machine of a bulk job.
type BulkTarget struct {
	MachineID    string    `json:"machineId"`
	ComputerName string    `json:"computerName"`
	State        string    `json:"state"`
	ActionID     string    `json:"actionId,omitempty"`
	Error        string    `json:"error,omitempty"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// BulkStore keeps bulk jobs and the state of each of their targets.
type BulkStore interface {
	// CreateBulkJob records a job with its targets (all pending).
	CreateBulkJob(ctx context.Context, job *BulkJob) error
	// UpdateBulkTargets records new states of some targets of a job.
	UpdateBulkTargets(ctx context.Context, jobID string, targets []BulkTarget) error
	SetBulkJobStatus(ctx context.Context, jobID, status string) error
	// GetBulkJob returns a job with its targets; unknown ids wrap ErrNotFound.
	GetBulkJob(ctx context.Context, jobID string) (*BulkJob, error)
	// ListBulkJobs returns the newest jobs without their targets.
	ListBulkJobs(ctx context.Context, limit int) ([]BulkJob, error)
}
