package mdebridge

import (
	"context"
	"encoding/json"
	"time"
)

// Machine action types, as MDE names them in MachineAction.type.
const (
	ActionIsolate        = "Isolate"
	ActionUnisolate      = "Unisolate"
	ActionScan           = "RunAntiVirusScan"
	ActionCollect        = "CollectInvestigationPackage"
	ActionRestrict       = "RestrictCodeExecution"
	ActionUnrestrict     = "UnrestrictCodeExecution"
	ActionQuarantineFile = "StopAndQuarantineFile"
	ActionOffboard       = "Offboard"
	ActionLiveResponse   = "LiveResponse"
)

// Machine action statuses.
const (
	ActionStatusPending   = "Pending"
	ActionStatusRunning   = "InProgress"
	ActionStatusSucceeded = "Succeeded"
	ActionStatusFailed    = "Failed"
	ActionStatusTimeOut   = "TimeOut"
	ActionStatusCancelled = "Cancelled"
)

// ActionFinal reports whether a machine action status is terminal. TimeOut
// is terminal: the device never picked the action up and MDE gave up on it
// (a poller that waits on it waits forever, as XSOAR's does).
func ActionFinal(status string) bool {
	switch status {
	case ActionStatusSucceeded, ActionStatusFailed, ActionStatusTimeOut, ActionStatusCancelled:
		return true
	}
	return false
}

// MachineAction is a response action on a machine (GET /api/machineactions).
// Field names are MDE's; enumerations stay plain strings; Raw keeps the
// upstream object exactly.
type MachineAction struct {
	ID                    string                `json:"id"`
	Type                  string                `json:"type"`
	Scope                 string                `json:"scope"`
	Requestor             string                `json:"requestor"`
	RequestorComment      string                `json:"requestorComment"`
	Status                string                `json:"status"`
	MachineID             string                `json:"machineId"`
	ComputerDNSName       string                `json:"computerDnsName"`
	CreationTime          time.Time             `json:"creationDateTimeUtc"`
	LastUpdateTime        time.Time             `json:"lastUpdateDateTimeUtc"`
	CancellationRequestor string                `json:"cancellationRequestor"`
	CancellationComment   string                `json:"cancellationComment"`
	CancellationTime      time.Time             `json:"cancellationDateTimeUtc"`
	ErrorHResult          int64                 `json:"errorHResult"`
	ExternalID            string                `json:"externalId"`
	RequestSource         string                `json:"requestSource"`
	Title                 string                `json:"title"`
	RelatedFileInfo       *RelatedFileInfo      `json:"relatedFileInfo"`
	Commands              []LiveResponseCommand `json:"commands"`

	Raw json.RawMessage `json:"-"`
}

// RelatedFileInfo names the file of a StopAndQuarantineFile action.
type RelatedFileInfo struct {
	FileIdentifier     string `json:"fileIdentifier"`
	FileIdentifierType string `json:"fileIdentifierType"` // Sha1, Sha256, Md5
}

// LiveResponseCommand is one command of a live response action and, once the
// action runs, its progress.
type LiveResponseCommand struct {
	Index         int              `json:"index"`
	StartTime     time.Time        `json:"startTime"`
	EndTime       time.Time        `json:"endTime"`
	CommandStatus string           `json:"commandStatus"` // Created, Completed, Failed
	Errors        []string         `json:"errors"`
	Command       LiveResponseSpec `json:"command"`
}

// LiveResponseSpec is a live response command as requested: RunScript
// (ScriptName, Args), GetFile (Path) or PutFile (FileName).
type LiveResponseSpec struct {
	Type   string           `json:"type"`
	Params []LiveResponseKV `json:"params"`
}

// LiveResponseKV is one parameter of a live response command.
type LiveResponseKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ActionFilter selects machine actions in the store. Empty fields do not
// filter.
type ActionFilter struct {
	MachineID string
	Type      string
	Status    string
	Since     time.Time // created at or after
	Offset    int
	Limit     int // 0 means no limit
}

// ActionStore keeps machine actions: those synced from MDE and those
// mdebridge issued. Actions are history and are never retired.
type ActionStore interface {
	// UpsertMachineActions stores actions by id; a newer lastUpdate wins.
	UpsertMachineActions(ctx context.Context, actions []MachineAction) error
	// FindMachineActions returns matching actions, newest first, and the
	// total before Offset and Limit apply.
	FindMachineActions(ctx context.Context, f ActionFilter) ([]MachineAction, int, error)
	// GetMachineAction returns one action; an unknown id wraps ErrNotFound.
	GetMachineAction(ctx context.Context, id string) (*MachineAction, error)
}

// MachineActionSource lists machine actions updated at or after since (all
// when since is zero), page by page.
type MachineActionSource interface {
	ListMachineActions(ctx context.Context, since time.Time, page func([]MachineAction) error) error
}
