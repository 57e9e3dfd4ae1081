package mdebridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Response operations: what an analyst asks mdebridge to do to machines.
// Each maps to one MDE call per machine.
const (
	OpIsolate        = "isolate"
	OpUnisolate      = "unisolate"
	OpScan           = "scan"
	OpCollect        = "collect"
	OpRestrict       = "restrict"
	OpUnrestrict     = "unrestrict"
	OpQuarantineFile = "quarantine-file"
	OpOffboard       = "offboard"
	OpLiveResponse   = "live-response"
	OpTag            = "tag"
	OpInvestigate    = "investigate"
)

// Operations lists every response operation with the MDE action type it
// creates ("" for those that create none: tags change at once, an
// investigation is not a machine action) and whether it disrupts the
// machine's user (and so asks for confirmation on a terminal).
func Operations() []Operation {
	return []Operation{
		{OpIsolate, ActionIsolate, true, "cut the machine off the network (--type full, selective, unmanaged)"},
		{OpUnisolate, ActionUnisolate, false, "release the machine from isolation"},
		{OpScan, ActionScan, false, "run a Microsoft Defender Antivirus scan (--type quick or full)"},
		{OpCollect, ActionCollect, false, "collect an investigation package (and download it with --wait --download DIR)"},
		{OpRestrict, ActionRestrict, true, "allow only Microsoft-signed code to run"},
		{OpUnrestrict, ActionUnrestrict, false, "lift the code execution restriction"},
		{OpQuarantineFile, ActionQuarantineFile, true, "stop the processes of a file (--sha1) and quarantine it"},
		{OpOffboard, ActionOffboard, true, "offboard the machine from MDE (Windows only)"},
		{OpLiveResponse, ActionLiveResponse, true, "run a live response session: scripts, get and put files"},
		{OpTag, "", false, "add or remove a machine tag"},
		{OpInvestigate, "", false, "start an automated investigation"},
	}
}

// Operation describes one response operation.
type Operation struct {
	Name       string
	ActionType string
	Disruptive bool
	Summary    string
}

// LookupOperation returns the operation named name.
func LookupOperation(name string) (Operation, error) {
	for _, o := range Operations() {
		if o.Name == name {
			return o, nil
		}
	}
	return Operation{}, fmt.Errorf("unknown operation %q", name)
}

// ActionRequest asks for one operation on one or more machines.
type ActionRequest struct {
	Operation string   `json:"operation"`
	Targets   []string `json:"targets,omitempty"` // device ids, computer names or IP addresses
	Tag       string   `json:"tag,omitempty"`     // bulk: every live machine with this tag
	Group     string   `json:"group,omitempty"`   // bulk: every live machine of this device group
	// At is when an IP target had its address (findbyip); zero means now.
	At      time.Time `json:"at,omitzero"`
	Comment string    `json:"comment"`
	Actor   string    `json:"actor,omitempty"` // set by the CLI or the REST API, not by the caller

	IsolationType string             `json:"isolationType,omitempty"` // Full (default), Selective, UnManagedDevice
	ScanType      string             `json:"scanType,omitempty"`      // Quick (default), Full
	Sha1          string             `json:"sha1,omitempty"`          // quarantine-file
	Commands      []LiveResponseSpec `json:"commands,omitempty"`      // live-response
	TagValue      string             `json:"tagValue,omitempty"`      // tag
	TagRemove     bool               `json:"tagRemove,omitempty"`     // tag: remove instead of add

	Wait        bool          `json:"wait,omitempty"`        // poll each action to a final status
	Timeout     time.Duration `json:"timeout,omitempty"`     // of the wait (default: the configuration's)
	DownloadDir string        `json:"downloadDir,omitempty"` // with Wait: save packages and live response results here
	DryRun      bool          `json:"dryRun,omitempty"`
	Concurrency int           `json:"concurrency,omitempty"` // bulk: calls in flight (default: the configuration's)
}

// ActionReport is what came of an ActionRequest.
type ActionReport struct {
	RequestID string          `json:"requestId"`
	JobID     string          `json:"jobId,omitempty"` // bulk jobs only; resume with it
	Operation string          `json:"operation"`
	DryRun    bool            `json:"dryRun"`
	Outcomes  []ActionOutcome `json:"outcomes"`
}

// Failed counts the outcomes that failed.
func (r *ActionReport) Failed() int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Result == AuditFailed || (o.Action != nil && ActionFinal(o.Action.Status) && o.Action.Status != ActionStatusSucceeded) {
			n++
		}
	}
	return n
}

// ActionOutcome is what happened on one machine.
type ActionOutcome struct {
	MachineID     string         `json:"machineId"`
	ComputerName  string         `json:"computerName"`
	Result        string         `json:"result"` // created, joined, dry-run, failed, done
	Action        *MachineAction `json:"action,omitempty"`
	Investigation *Investigation `json:"investigation,omitempty"`
	Machine       *Machine       `json:"-"` // tag: the machine as MDE returned it
	Downloads     []Download     `json:"downloads,omitempty"`
	Error         string         `json:"error,omitempty"`
	// StillRunning says the wait ended before the action did.
	StillRunning bool `json:"stillRunning,omitempty"`
}

// Download is a file mdebridge saved: an investigation package or a live
// response result.
type Download struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	What   string `json:"what"` // "investigation package", "live response command 0 (RunScript)"
}

// Investigation is an automated investigation (GET /api/investigations).
type Investigation struct {
	ID                string          `json:"id"`
	StartTime         time.Time       `json:"startTime"`
	EndTime           time.Time       `json:"endTime"`
	State             string          `json:"state"`
	CancelledBy       string          `json:"cancelledBy"`
	StatusDetails     string          `json:"statusDetails"`
	MachineID         string          `json:"machineId"`
	ComputerDNSName   string          `json:"computerDnsName"`
	TriggeringAlertID string          `json:"triggeringAlertId"`
	Raw               json.RawMessage `json:"-"`
}

// Enrichment is what MDE knows about one observable: a file hash, an IP
// address, a domain, a URL or a user account. A part that could not be had
// is named in Errors (with the permission it needs) rather than failing the
// whole view.
type Enrichment struct {
	Kind       string            `json:"kind"` // file, ip, domain, url, user
	Value      string            `json:"value"`
	Info       json.RawMessage   `json:"info,omitempty"`  // file profile
	Stats      json.RawMessage   `json:"stats,omitempty"` // organisation and global prevalence
	Machines   []json.RawMessage `json:"machines"`
	Alerts     []json.RawMessage `json:"alerts"`
	Indicators []Indicator       `json:"indicators"` // custom indicators (from the store) on this value
	Errors     map[string]string `json:"errors,omitempty"`
}

// BulkProgress reports a bulk job as it goes.
type BulkProgress struct {
	JobID  string
	Total  int
	Done   int // answered by MDE (created, joined or failed), this run and before
	Failed int
}

// InputError is a request that is wrong in itself (no comment, an unknown
// scan type, an unreadable indicator file): nothing was sent.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Responder is the response service as the REST API sees it.
type Responder interface {
	Respond(ctx context.Context, req ActionRequest, progress func(BulkProgress)) (*ActionReport, error)
	Resume(ctx context.Context, jobID, actor string, progress func(BulkProgress)) (*ActionReport, error)
	CancelAction(ctx context.Context, actionID, comment, actor string) (*MachineAction, error)
	ImportIndicators(ctx context.Context, imp IndicatorImport) (*IndicatorImportReport, error)
	// ImportIndicatorFile reads a file (csv, json or stix) and imports it.
	ImportIndicatorFile(ctx context.Context, r io.Reader, format string, imp IndicatorImport) (*IndicatorImportReport, error)
	DeleteIndicators(ctx context.Context, keys []string, comment, actor string) ([]string, error)
	Enrich(ctx context.Context, value string) (*Enrichment, error)
	// EnrichAs is Enrich for a value of a given kind (file, ip, domain, url, user).
	EnrichAs(ctx context.Context, kind, value string) (*Enrichment, error)
}

// IndicatorImport asks to submit indicators (one or many) to MDE.
type IndicatorImport struct {
	Indicators []Indicator        `json:"indicators"`
	Problems   []IndicatorProblem `json:"problems,omitempty"` // found while parsing
	Duplicates int                `json:"duplicates,omitempty"`
	Entries    int                `json:"entries,omitempty"`
	Atomic     bool               `json:"atomic,omitempty"`
	DryRun     bool               `json:"dryRun,omitempty"`
	Comment    string             `json:"comment"`
	Actor      string             `json:"actor,omitempty"`
	Operation  string             `json:"operation,omitempty"` // indicators.add, indicators.update, indicators.import
	Defaults   IndicatorDefaults  `json:"-"`
}

// IndicatorDefaults fill what an indicator file leaves out.
type IndicatorDefaults struct {
	Action     string
	Severity   string
	Expiration time.Duration // from now; 0 means none
}
