package mdebridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Incident is what a SOC works on: one MDE alert, or every alert of one MDE
// incident (GroupByMDEIncident). Its triage (status, classification,
// determination, assignee, comments) is its alerts', and a change made to
// it in mdebridge is mirrored to them in MDE.
type Incident struct {
	ID             int64     `json:"id"`
	Key            string    `json:"key"` // "alert:<alert id>" or "mde:<MDE incident id>"
	Title          string    `json:"title"`
	Severity       string    `json:"severity"`
	Status         string    `json:"status"`
	Classification string    `json:"classification,omitempty"`
	Determination  string    `json:"determination,omitempty"`
	AssignedTo     string    `json:"assignedTo,omitempty"`
	MDEIncidentID  int64     `json:"mdeIncidentId,omitempty"`
	AlertIDs       []string  `json:"alertIds"`
	Machines       []string  `json:"machines"`
	Categories     []string  `json:"categories"`
	FirstAlertTime time.Time `json:"firstAlertTime"` // earliest alertCreationTime
	LastUpdateTime time.Time `json:"lastUpdateTime"` // latest alert lastUpdateTime
	CreatedAt      time.Time `json:"createdAt"`      // when mdebridge created it
	UpdatedAt      time.Time `json:"updatedAt"`      // when it last changed
	Version        int64     `json:"version"`        // the number of events it has had

	// Comments of its alerts, oldest first (GetIncident only).
	Comments []AlertComment `json:"comments,omitempty"`
	// Mirror reports changes made in mdebridge that MDE has not taken yet.
	Mirror *MirrorStatus `json:"mirror,omitempty"`
}

// MirrorStatus sums up an incident's changes on their way to MDE.
type MirrorStatus struct {
	Pending   int    `json:"pending"`
	Failed    int    `json:"failed"`
	LastError string `json:"lastError,omitempty"`
}

// How alerts become incidents.
const (
	GroupByAlert       = "alert"        // one incident per alert
	GroupByMDEIncident = "mde_incident" // one per MDE incident id (an alert without one stands alone)
)

// IncidentKey names the incident an alert belongs to under groupBy.
func IncidentKey(a *Alert, groupBy string) string {
	if groupBy == GroupByMDEIncident && a.IncidentID != 0 {
		return "mde:" + strconv.FormatInt(a.IncidentID, 10)
	}
	return "alert:" + a.ID
}

// severityRank orders MDE severities; an unknown one ranks with
// UnSpecified, below Informational.
func severityRank(s string) int {
	return slices.Index([]string{"informational", "low", "medium", "high"}, strings.ToLower(s)) + 1
}

// Aggregate sets an incident's summary from its alerts: the most severe
// alert's title and severity, a status that is Resolved only when every
// alert is, the triage of the most recently updated alert that has one.
func (inc *Incident) Aggregate(alerts []Alert) {
	if len(alerts) == 0 {
		return
	}
	byUpdate := slices.Clone(alerts)
	slices.SortStableFunc(byUpdate, func(a, b Alert) int { return b.Version().Compare(a.Version()) })
	top := &byUpdate[len(byUpdate)-1]
	statuses := map[string]int{}
	inc.AlertIDs, inc.Machines, inc.Categories = nil, nil, nil
	inc.FirstAlertTime, inc.LastUpdateTime = time.Time{}, time.Time{}
	for i := range alerts {
		a := &alerts[i]
		if r, tr := severityRank(a.Severity), severityRank(top.Severity); r > tr || r == tr && a.AlertCreationTime.Before(top.AlertCreationTime) {
			top = a
		}
		statuses[a.Status]++
		inc.AlertIDs = append(inc.AlertIDs, a.ID)
		host := a.ComputerDNSName
		if host == "" {
			host = a.MachineID
		}
		if host != "" && !slices.Contains(inc.Machines, host) {
			inc.Machines = append(inc.Machines, host)
		}
		if a.Category != "" && !slices.Contains(inc.Categories, a.Category) {
			inc.Categories = append(inc.Categories, a.Category)
		}
		if inc.FirstAlertTime.IsZero() || a.AlertCreationTime.Before(inc.FirstAlertTime) {
			inc.FirstAlertTime = a.AlertCreationTime
		}
		if a.Version().After(inc.LastUpdateTime) {
			inc.LastUpdateTime = a.Version()
		}
		if a.IncidentID != 0 {
			inc.MDEIncidentID = a.IncidentID
		}
	}
	slices.Sort(inc.Machines)
	slices.Sort(inc.Categories)
	inc.Title, inc.Severity = top.Title, top.Severity
	if len(alerts) > 1 {
		inc.Title = fmt.Sprintf("%s (+%d more alerts)", top.Title, len(alerts)-1)
	}
	switch {
	case statuses["Resolved"] == len(alerts):
		inc.Status = "Resolved"
	case statuses["New"] == len(alerts):
		inc.Status = "New"
	case statuses["InProgress"] > 0 || statuses["Resolved"] > 0:
		inc.Status = "InProgress"
	default:
		inc.Status = byUpdate[0].Status // values MDE has not documented
	}
	inc.Classification, inc.Determination, inc.AssignedTo = "", "", ""
	for _, a := range byUpdate {
		if inc.Classification == "" && a.Classification != "" {
			inc.Classification, inc.Determination = a.Classification, a.Determination
		}
		if inc.AssignedTo == "" && a.AssignedTo != "" {
			inc.AssignedTo = a.AssignedTo
		}
	}
}

// IncidentFilters decide which alerts become incidents. An empty list lets
// every value through; matching is case-insensitive. Once an incident
// exists every later change of its alerts flows, whether or not the alert
// still matches: a status filter of New must not hide the resolution.
type IncidentFilters struct {
	Severities       []string `json:"severities,omitempty"`
	Statuses         []string `json:"statuses,omitempty"`
	DetectionSources []string `json:"detectionSources,omitempty"`
	DeviceGroups     []string `json:"deviceGroups,omitempty"`
}

// Match reports whether an alert passes the filters.
func (f IncidentFilters) Match(a *Alert) bool {
	in := func(list []string, v string) bool {
		return len(list) == 0 || slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
	}
	return in(f.Severities, a.Severity) && in(f.Statuses, a.Status) && in(f.DetectionSources, a.DetectionSource) && in(f.DeviceGroups, a.RBACGroupName)
}

// PollCheckpoint is where the incident pipeline's polling stands: every
// alert version stamped before Watermark has been seen, and so have the
// first Ties of those stamped at exactly Watermark (in the service's order).
// SweepFrom is where the next sweep for late alerts starts. It is saved in
// the same transaction as the alerts it covers, so a process killed at any
// point resumes without missing or repeating anything.
type PollCheckpoint struct {
	Watermark time.Time `json:"watermark"`
	Ties      int       `json:"ties"`
	SweepFrom time.Time `json:"sweepFrom"`
}

// IngestOptions say how IngestAlerts turns alerts into incidents.
type IngestOptions struct {
	GroupBy string
	Filters IncidentFilters
	// PortalURL is the security portal's base URL, for links in events.
	PortalURL string
	// Checkpoint, when set, is saved with the alerts.
	Checkpoint *PollCheckpoint
}

// Verdict is what ingesting one alert version did.
type Verdict string

const (
	VerdictNew       Verdict = "new"       // a new alert; an incident created or joined
	VerdictChanged   Verdict = "changed"   // a newer version that changed its incident
	VerdictSilent    Verdict = "silent"    // a newer version with nothing to report: an echo of a change mdebridge made
	VerdictDuplicate Verdict = "duplicate" // the version already stored (the overlap re-reads it)
	VerdictStale     Verdict = "stale"     // older than the version stored
	VerdictFiltered  Verdict = "filtered"  // stored, but it matches no incident filter
)

// IngestResult is what IngestAlerts did.
type IngestResult struct {
	Verdicts []Verdict // one per alert given, in order
	Events   int       // events appended
	LastSeq  int64     // the sequence number of the last event appended
}

// Count returns how many alerts got verdict v.
func (r IngestResult) Count(v Verdict) int {
	n := 0
	for _, x := range r.Verdicts {
		if x == v {
			n++
		}
	}
	return n
}

// StoredEvent is an incident event in the store's outbox. Body is the
// event as sinks receive it (docs/incident-events.md); Seq orders all
// events and never repeats.
type StoredEvent struct {
	Seq        int64           `json:"sequence"`
	ID         string          `json:"id"`
	IncidentID int64           `json:"incidentId"`
	AlertID    string          `json:"alertId,omitempty"`
	Kind       string          `json:"kind"`   // create, update
	Origin     string          `json:"origin"` // mde, mdebridge
	CreatedAt  time.Time       `json:"createdAt"`
	Body       json.RawMessage `json:"-"`
}

// EventFilter selects events.
type EventFilter struct {
	After    int64 // sequence numbers above this
	Incident int64 // of this incident only
	Limit    int   // at most this many (0: 1000)
}

// IncidentFilter selects incidents in the store. Empty fields do not
// filter; string matches are case-insensitive.
type IncidentFilter struct {
	Status       string
	Severity     string
	AssignedTo   string
	UpdatedSince time.Time

	Offset int
	Limit  int // 0 means no limit
}

// IncidentChange is a change to an incident made in mdebridge (CLI, REST):
// applied at once, recorded as an event and queued for MDE.
type IncidentChange struct {
	AlertUpdate
	// AlertIDs limit the change to these alerts of the incident; empty
	// means all of them.
	AlertIDs []string
	// Author names who made it (a comment's author until MDE takes it).
	Author string
}

// ChangeResult is what ChangeIncident did.
type ChangeResult struct {
	Incident *Incident
	Mirror   MirrorChange // the change queued for MDE
	Event    StoredEvent
}

// MirrorChange is a change made in mdebridge on its way to MDE.
type MirrorChange struct {
	ID            int64       `json:"id"`
	IncidentID    int64       `json:"incidentId"`
	AlertIDs      []string    `json:"alertIds"`
	Update        AlertUpdate `json:"update"`
	Author        string      `json:"author"`
	State         string      `json:"state"` // pending, sending, done, failed
	Attempts      int         `json:"attempts"`
	NextAttemptAt time.Time   `json:"nextAttemptAt"`
	Error         string      `json:"error,omitempty"`
	CreatedAt     time.Time   `json:"createdAt"`
}

// MirrorGrace is how long a change made in mdebridge is left to the
// process that made it, which sends it at once; after that any sender (the
// pipeline in serve) picks it up.
const MirrorGrace = 30 * time.Second

// MirrorOutcome is how an attempt to send a MirrorChange ended.
type MirrorOutcome struct {
	Done    bool
	Error   string    // why it failed
	RetryAt time.Time // when to try again; zero with an Error: give up
}

// Lease names the process that runs a singleton job (the incident
// pipeline) on a store.
type Lease struct {
	Name        string    `json:"name"`
	Owner       string    `json:"owner"` // "host:pid"
	HeartbeatAt time.Time `json:"heartbeatAt"`
}

// LeaseHeldError says that a live process holds a lease.
type LeaseHeldError struct{ Lease Lease }

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("%s is running in another process (%s, alive %s ago)", e.Lease.Name, e.Lease.Owner,
		time.Since(e.Lease.HeartbeatAt).Round(time.Second))
}

// IncidentStore keeps incidents, their alerts and the event outbox.
type IncidentStore interface {
	// IngestAlerts stores one page of polled alerts in one transaction: new
	// alerts and newer versions are stored, incidents created or updated,
	// one event appended per change, and o.Checkpoint saved. A version
	// already stored (same id and lastUpdateTime) or older changes nothing.
	IngestAlerts(ctx context.Context, alerts []Alert, o IngestOptions) (IngestResult, error)
	// PollCheckpoint returns the saved checkpoint; ok is false before the
	// first poll.
	PollCheckpoint(ctx context.Context) (cp PollCheckpoint, ok bool, err error)

	FindIncidents(ctx context.Context, f IncidentFilter) ([]Incident, int, error)
	// GetIncident returns one incident with its comments and mirror status,
	// or a *NotFoundError.
	GetIncident(ctx context.Context, id int64) (*Incident, error)
	// ChangeIncident applies a change made in mdebridge to an incident's
	// alerts, queues it for MDE and appends an update event, in one
	// transaction. The alerts' raw JSON stays MDE's until MDE answers.
	ChangeIncident(ctx context.Context, id int64, ch IncidentChange, o IngestOptions) (ChangeResult, error)

	FindEvents(ctx context.Context, f EventFilter) ([]StoredEvent, error)
	// LastEventSeq is the sequence number of the newest event (0: none).
	LastEventSeq(ctx context.Context) (int64, error)
	// SinkCursor returns the last event a sink has handled (0: none yet).
	SinkCursor(ctx context.Context, sink string) (int64, error)
	SetSinkCursor(ctx context.Context, sink string, seq int64) error
	// PruneEvents deletes events created before olderThan whose sequence
	// number is at most delivered (what every sink has handled).
	PruneEvents(ctx context.Context, olderThan time.Time, delivered int64) (int, error)

	// ClaimMirrorChanges marks up to limit changes due at now (or the one
	// named by id, when id is not 0, due or not) as being sent, for
	// leaseFor, and returns them. A change is claimed by one caller at a
	// time; a new change is due MirrorGrace after it was made.
	ClaimMirrorChanges(ctx context.Context, id int64, now time.Time, limit int, leaseFor time.Duration) ([]MirrorChange, error)
	CompleteMirrorChange(ctx context.Context, id int64, o MirrorOutcome) error

	// AcquireLease takes the named lease for owner unless a live owner
	// holds it (*LeaseHeldError); stale says whether another owner's lease
	// may be taken over. RenewLease fails once the lease is lost.
	AcquireLease(ctx context.Context, name, owner string, stale func(Lease) bool) error
	RenewLease(ctx context.Context, name, owner string) error
	ReleaseLease(ctx context.Context, name, owner string) error
}

// EventSink receives incident events, in order: a webhook, syslog, a
// file. It may deliver an event more than once (after a crash, or a retry
// whose first try did arrive); every event carries a stable id.
type EventSink interface {
	// Name identifies the sink in cursors, logs and metrics.
	Name() string
	// Deliver hands events over. It returns how many of them, from the
	// first, it has handled (delivered, or set aside in a dead-letter file)
	// and, when that is not all of them, why it stopped; the rest are
	// offered again later.
	Deliver(ctx context.Context, events []StoredEvent) (Delivery, error)
	Close() error
}

// Delivery is what one EventSink.Deliver call did.
type Delivery struct {
	Handled      int // events handled, from the first
	DeadLettered int // of which set aside after failing
}

// EventSinkResumer is a sink that knows the last event it holds (a file):
// delivery resumes after it, whatever the store's cursor says, so that an
// event written just before the process died is not written twice.
type EventSinkResumer interface {
	Delivered() (seq int64, err error)
}

// IncidentService changes incidents on behalf of a user: the REST API and
// the CLI call it. The incident package implements it.
type IncidentService interface {
	// ChangeIncident applies a change and sends it to MDE; the returned
	// error is about the change (bad input, unknown incident). A failure to
	// reach MDE is reported in the incident's Mirror status and retried.
	ChangeIncident(ctx context.Context, id int64, ch IncidentChange) (*Incident, error)
	// ChangeAlert is ChangeIncident for one alert, by alert id.
	ChangeAlert(ctx context.Context, alertID string, ch IncidentChange) (*Incident, error)
}
