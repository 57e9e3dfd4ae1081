package emulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// Machine action types and statuses (mde-api.md §4.3).
const (
	typeIsolate      = "Isolate"
	typeUnisolate    = "Unisolate"
	typeScan         = "RunAntiVirusScan"
	typeCollect      = "CollectInvestigationPackage"
	typeRestrict     = "RestrictCodeExecution"
	typeUnrestrict   = "UnrestrictCodeExecution"
	typeQuarantine   = "StopAndQuarantineFile"
	typeOffboard     = "Offboard"
	typeLiveResponse = "LiveResponse"

	statusPending    = "Pending"
	statusInProgress = "InProgress"
	statusSucceeded  = "Succeeded"
	statusFailed     = "Failed"
	statusTimeOut    = "TimeOut"
	statusCancelled  = "Cancelled"
)

// HResults the live service reports on actions that did not succeed
// (peers/elastic-integrations/machine_actions.ndjson).
const (
	hresultTimeOut = -2145844840
	hresultFailed  = -2147467259 // E_FAIL
)

// machineAction is one response action. Its status is not stored but
// computed from the clock: Pending until pickedAt, InProgress until doneAt,
// then its outcome, unless cancelled first. So actions advance without any
// goroutine, and a test that moves the clock sees them move.
type machineAction struct {
	ID               string
	Type             string
	Scope            opt[string]
	Requestor        string
	RequestorComment string
	RequestSource    string
	ExternalID       opt[string]
	MachineID        string
	ComputerDNSName  string
	RelatedFile      *relatedFile
	Commands         []lrCommand

	Created   time.Time
	VisibleAt time.Time
	PickedAt  time.Time // zero: the device never picks it up
	DoneAt    time.Time
	Outcome   string // Succeeded, Failed or TimeOut, at DoneAt
	Cancel    *actionCancel
}

type relatedFile struct{ Identifier, Type string }

type actionCancel struct {
	At        time.Time
	Requestor string
	Comment   string
}

// lrCommand is one live response command as requested.
type lrCommand struct {
	Type   string
	Params [][2]string
}

func (c lrCommand) param(key string) string {
	for _, p := range c.Params {
		if strings.EqualFold(p[0], key) {
			return p[1]
		}
	}
	return ""
}

// state returns the status at now and when it last changed.
func (a *machineAction) state(now time.Time) (status string, since time.Time) {
	if a.Cancel != nil && !now.Before(a.Cancel.At) {
		return statusCancelled, a.Cancel.At
	}
	if now.Before(a.DoneAt) {
		if !a.PickedAt.IsZero() && !now.Before(a.PickedAt) {
			return statusInProgress, a.PickedAt
		}
		return statusPending, a.Created
	}
	return a.Outcome, a.DoneAt
}

func (a *machineAction) final(now time.Time) bool {
	st, _ := a.state(now)
	return st != statusPending && st != statusInProgress
}

// commandState is the progress of live response command i at now: commands
// run one after another while the action is in progress; a failed action
// fails on its last command that started.
func (a *machineAction) commandState(i int, now time.Time) (status string, start, end time.Time, errs []string) {
	st, _ := a.state(now)
	if a.PickedAt.IsZero() || now.Before(a.PickedAt) || len(a.Commands) == 0 {
		return "Created", time.Time{}, time.Time{}, []string{}
	}
	slice := a.DoneAt.Sub(a.PickedAt) / time.Duration(len(a.Commands))
	start = a.PickedAt.Add(time.Duration(i) * slice)
	end = start.Add(slice)
	stop := now
	if a.Cancel != nil && a.Cancel.At.Before(stop) {
		stop = a.Cancel.At
	}
	switch {
	case stop.Before(start):
		return "Created", time.Time{}, time.Time{}, []string{}
	case stop.Before(end):
		if st == statusCancelled {
			return "Failed", start, stop, []string{"The command was cancelled"}
		}
		return "InProgress", start, time.Time{}, []string{}
	case st == statusFailed && i == len(a.Commands)-1:
		return "Failed", start, end, []string{"The command could not complete on the device"}
	}
	return "Completed", start, end, []string{}
}

// actionView is an action as seen at one instant: what lists filter and sort.
type actionView struct {
	a          *machineAction
	status     string
	lastUpdate time.Time
}

func (r *responseState) view(a *machineAction, now time.Time) actionView {
	st, since := a.state(now)
	return actionView{a: a, status: st, lastUpdate: since}
}

var actionSchema = odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.MachineAction"},
	odata.Property[actionView]{Name: "id", Type: odata.String, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.a.ID} }},
	odata.Property[actionView]{Name: "type", Type: odata.String, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.a.Type} }},
	odata.Property[actionView]{Name: "status", Type: odata.String, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.status} }},
	odata.Property[actionView]{Name: "machineId", Type: odata.String, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.a.MachineID} }},
	odata.Property[actionView]{Name: "requestor", Type: odata.String, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.a.Requestor} }},
	odata.Property[actionView]{Name: "creationDateTimeUtc", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return timeValue(v.a.Created) }},
	// Not in the documented filter list, but Elastic's integration filters
	// and orders on it against the live service.
	odata.Property[actionView]{Name: "lastUpdateDateTimeUtc", Type: odata.DateTime, Filterable: true, Sortable: true, Get: func(v actionView) odata.Value { return timeValue(v.lastUpdate) }},
	odata.Property[actionView]{Name: "computerDnsName", Type: odata.String, Sortable: true, Get: func(v actionView) odata.Value { return odata.Value{Str: v.a.ComputerDNSName} }},
	odata.Property[actionView]{Name: "scope", Type: odata.String, Get: func(v actionView) odata.Value { return optValue(v.a.Scope) }},
)

// actionJSON is a MachineAction in the live key order
// (peers/elastic-integrations/machine_actions.ndjson, 2024–2025).
type actionJSON struct {
	ID                      string            `json:"id"`
	Type                    string            `json:"type"`
	Title                   *string           `json:"title"`
	Requestor               string            `json:"requestor"`
	RequestorComment        string            `json:"requestorComment"`
	Status                  string            `json:"status"`
	MachineID               string            `json:"machineId"`
	ComputerDNSName         string            `json:"computerDnsName"`
	CreationDateTimeUtc     wireTime          `json:"creationDateTimeUtc"`
	LastUpdateDateTimeUtc   wireTime          `json:"lastUpdateDateTimeUtc"`
	CancellationRequestor   *string           `json:"cancellationRequestor"`
	CancellationComment     *string           `json:"cancellationComment"`
	CancellationDateTimeUtc wireTime          `json:"cancellationDateTimeUtc"`
	ErrorHResult            int64             `json:"errorHResult"`
	Scope                   *string           `json:"scope"`
	ExternalID              *string           `json:"externalId"`
	RequestSource           string            `json:"requestSource"`
	RelatedFileInfo         *relatedFileJSON  `json:"relatedFileInfo"`
	Commands                []lrCommandStatus `json:"commands"`
	TroubleshootInfo        *string           `json:"troubleshootInfo"`
}

type relatedFileJSON struct {
	FileIdentifier     string `json:"fileIdentifier"`
	FileIdentifierType string `json:"fileIdentifierType"`
}

// lrCommandStatus is one command of a live response action as the service
// reports it (docs/machineaction-liveresponse.json).
type lrCommandStatus struct {
	Index         int           `json:"index"`
	StartTime     wireTime      `json:"startTime"`
	EndTime       wireTime      `json:"endTime"`
	CommandStatus string        `json:"commandStatus"`
	Errors        []string      `json:"errors"`
	Command       lrCommandJSON `json:"command"`
}

type lrCommandJSON struct {
	Type   string `json:"type"`
	Params []lrKV `json:"params"`
}

type lrKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func optPtr(o opt[string]) *string {
	if !o.OK {
		return nil
	}
	return &o.V
}

func (v actionView) wire(now time.Time) actionJSON {
	a := v.a
	j := actionJSON{
		ID: a.ID, Type: a.Type, Requestor: a.Requestor, RequestorComment: a.RequestorComment,
		Status: v.status, MachineID: a.MachineID, ComputerDNSName: a.ComputerDNSName,
		CreationDateTimeUtc: wireTime(a.Created), LastUpdateDateTimeUtc: wireTime(v.lastUpdate),
		Scope: optPtr(a.Scope), ExternalID: optPtr(a.ExternalID), RequestSource: a.RequestSource,
		Commands: []lrCommandStatus{},
	}
	switch v.status {
	case statusTimeOut:
		j.ErrorHResult = hresultTimeOut
	case statusFailed:
		j.ErrorHResult = hresultFailed
	case statusCancelled:
		j.CancellationRequestor, j.CancellationComment = &a.Cancel.Requestor, &a.Cancel.Comment
		j.CancellationDateTimeUtc = wireTime(a.Cancel.At)
	}
	if a.RelatedFile != nil {
		j.RelatedFileInfo = &relatedFileJSON{FileIdentifier: a.RelatedFile.Identifier, FileIdentifierType: a.RelatedFile.Type}
	}
	for i, c := range a.Commands {
		st, start, end, errs := a.commandState(i, now)
		cj := lrCommandStatus{Index: i, StartTime: wireTime(start), EndTime: wireTime(end), CommandStatus: st, Errors: errs,
			Command: lrCommandJSON{Type: c.Type, Params: []lrKV{}}}
		for _, p := range c.Params {
			cj.Command.Params = append(cj.Command.Params, lrKV{Key: p[0], Value: p[1]})
		}
		j.Commands = append(j.Commands, cj)
	}
	return j
}

// actionRequest is a new action as a POST asks for it.
type actionRequest struct {
	Type        string
	Scope       opt[string]
	Comment     string
	Requestor   string
	ExternalID  opt[string]
	RelatedFile *relatedFile
	Commands    []lrCommand
}

// Errors of createAction, which the handler words.
var (
	errActiveRequest   = errors.New("an action of this type is already in progress on the machine")
	errTooManySessions = errors.New("too many live response sessions")
)

// maxLiveResponseSessions is how many live response sessions may run at once
// in a tenant (mde-api.md §2.1).
const maxLiveResponseSessions = 25

// createAction records a new action on m, or returns the pending one of the
// same type (joined reports that) when the behaviour says duplicates return
// it. It is atomic: concurrent requests for one machine make one action.
func (r *responseState) createAction(m *machine, req actionRequest, now time.Time) (a *machineAction, joined bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(m.ID)
	for _, old := range r.byMachine[key] {
		if old.Type != req.Type || old.final(now) {
			continue
		}
		if req.Type == typeLiveResponse || req.Type == typeCollect || r.behaviour.Duplicates == DuplicatesReject {
			return nil, false, errActiveRequest
		}
		return old, true, nil
	}
	if req.Type == typeLiveResponse {
		active := 0
		for _, list := range r.byMachine {
			for _, old := range list {
				if old.Type == typeLiveResponse && !old.final(now) {
					active++
				}
			}
		}
		if active >= maxLiveResponseSessions {
			return nil, false, errTooManySessions
		}
	}
	b := r.behaviour
	a = &machineAction{
		ID: randomGUID(r.rng), Type: req.Type, Scope: req.Scope, Requestor: req.Requestor,
		RequestorComment: req.Comment, RequestSource: "PublicApi", ExternalID: req.ExternalID,
		MachineID: m.ID, ComputerDNSName: m.ComputerDNSName, RelatedFile: req.RelatedFile, Commands: req.Commands,
		Created: now, VisibleAt: now.Add(ms(b.VisibleAfterMs)),
	}
	u := r.rng.Float64()
	online := m.HealthStatus == "Active" && m.OnboardingStatus == "Onboarded"
	switch {
	case !online || u < b.TimeoutRate:
		a.DoneAt, a.Outcome = now.Add(ms(b.TimeoutMs)), statusTimeOut
	default:
		a.PickedAt = now.Add(ms(b.PendingMs))
		a.DoneAt, a.Outcome = a.PickedAt.Add(ms(b.RunMs)), statusSucceeded
		if u < b.TimeoutRate+b.FailureRate {
			a.Outcome = statusFailed
		}
	}
	r.addLocked(a)
	return a, false, nil
}

func (r *responseState) addLocked(a *machineAction) {
	r.actions = append(r.actions, a)
	r.actionByID[strings.ToLower(a.ID)] = a
	key := strings.ToLower(a.MachineID)
	r.byMachine[key] = append(r.byMachine[key], a)
}

// actionByIDAt returns the action with id if it is visible at now.
func (r *responseState) actionByIDAt(id string, now time.Time) *machineAction {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.actionByID[strings.ToLower(id)]
	if a == nil || now.Before(a.VisibleAt) {
		return nil
	}
	return a
}

// visibleActions returns a view of every visible action at now, newest first.
func (r *responseState) visibleActions(now time.Time) []actionView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]actionView, 0, len(r.actions))
	for i := len(r.actions) - 1; i >= 0; i-- {
		if a := r.actions[i]; !now.Before(a.VisibleAt) {
			out = append(out, r.view(a, now))
		}
	}
	return out
}

var errActionFinal = errors.New("the action is already final")

// cancelAction cancels an action that is not final yet.
func (r *responseState) cancelAction(a *machineAction, requestor, comment string, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.final(now) {
		return errActionFinal
	}
	a.Cancel = &actionCancel{At: now, Requestor: requestor, Comment: comment}
	return nil
}

// completeAction ends an action now with status (the control API's way to
// force an outcome).
func (r *responseState) completeAction(id, status string, now time.Time) (*machineAction, error) {
	switch status {
	case statusSucceeded, statusFailed, statusTimeOut, statusCancelled:
	default:
		return nil, fmt.Errorf("status %q: want Succeeded, Failed, TimeOut or Cancelled", status)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.actionByID[strings.ToLower(id)]
	if a == nil {
		return nil, fmt.Errorf("no machine action %s", id)
	}
	if a.final(now) {
		return nil, errActionFinal
	}
	if status == statusCancelled {
		a.Cancel = &actionCancel{At: now, Requestor: "emulator", Comment: "cancelled through the control API"}
		return a, nil
	}
	if status != statusTimeOut && (a.PickedAt.IsZero() || a.PickedAt.After(now)) {
		a.PickedAt = now
	}
	if status == statusTimeOut {
		a.PickedAt = time.Time{}
	}
	a.DoneAt, a.Outcome = now, status
	return a, nil
}

// MachineResponseState is what the response actions that completed have
// done to a machine. MDE does not show it on the machine entity; the
// emulator shows it through its control API (GET /_emulator/machines/{id}/response).
type MachineResponseState struct {
	MachineID string `json:"machineId"`
	// Isolation is the scope of the isolation in force ("Full",
	// "Selective", "UnManagedDevice"), or "" when the machine is not isolated.
	Isolation               string   `json:"isolation"`
	CodeExecutionRestricted bool     `json:"codeExecutionRestricted"`
	Offboarded              bool     `json:"offboarded"`
	QuarantinedFiles        []string `json:"quarantinedFiles"`
	// PendingActions are the actions not final yet, by id.
	PendingActions []string `json:"pendingActions"`
}

// machineState replays the actions of a machine that succeeded by now, in
// the order they completed: an isolation that completes after the release
// that was asked for later still leaves the machine isolated, as on the live
// service.
func (r *responseState) machineState(machineID string, now time.Time) MachineResponseState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := MachineResponseState{MachineID: machineID, QuarantinedFiles: []string{}, PendingActions: []string{}}
	var done []*machineAction
	for _, a := range r.byMachine[strings.ToLower(machineID)] {
		status, _ := a.state(now)
		switch status {
		case statusSucceeded:
			done = append(done, a)
		case statusPending, statusInProgress:
			st.PendingActions = append(st.PendingActions, a.ID)
		}
	}
	slices.SortStableFunc(done, func(a, b *machineAction) int { return a.DoneAt.Compare(b.DoneAt) })
	for _, a := range done {
		switch a.Type {
		case typeIsolate:
			st.Isolation = a.Scope.V
			if st.Isolation == "" {
				st.Isolation = "Full"
			}
		case typeUnisolate:
			st.Isolation = ""
		case typeRestrict:
			st.CodeExecutionRestricted = true
		case typeUnrestrict:
			st.CodeExecutionRestricted = false
		case typeOffboard:
			st.Offboarded = true
		case typeQuarantine:
			if a.RelatedFile != nil && !slices.Contains(st.QuarantinedFiles, a.RelatedFile.Identifier) {
				st.QuarantinedFiles = append(st.QuarantinedFiles, a.RelatedFile.Identifier)
			}
		}
	}
	return st
}

// countActions counts the actions on a machine of one type ("" for all).
func (r *responseState) countActions(machineID, typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.byMachine[strings.ToLower(machineID)] {
		if typ == "" || a.Type == typ {
			n++
		}
	}
	return n
}

// historyTypes is the mix of past actions in a generated tenant.
var historyTypes = []weighted[string]{
	{typeScan, 40}, {typeIsolate, 12}, {typeUnisolate, 10}, {typeCollect, 10}, {typeLiveResponse, 8},
	{typeRestrict, 5}, {typeUnrestrict, 4}, {typeQuarantine, 8}, {typeOffboard, 1},
}

var historyComments = map[string][]string{
	typeScan:         {"Quick scan after detection", "Full scan requested by SOC", "Scheduled hygiene scan"},
	typeIsolate:      {"Isolating due to suspected ransomware activity", "Containment while investigating alert"},
	typeUnisolate:    {"Released after investigation", "False positive, releasing"},
	typeCollect:      {"Collect forensics for incident", "Investigation package for IR team"},
	typeLiveResponse: {"Collect memory dump", "Run triage script"},
	typeRestrict:     {"Restricting app execution pending cleanup"},
	typeUnrestrict:   {"Lifting restriction after cleanup"},
	typeQuarantine:   {"Quarantine malicious file"},
	typeOffboard:     {"Device decommissioned"},
}

// generateActions makes the tenant's past actions: a tenth of the machine
// count (at most 5,000), over the 30 days before anchor, with the lifecycle
// durations of the default behaviour. Those on offline machines time out
// (and the recent ones are still pending).
func (r *responseState) generateActions(rng *rand.Rand, machines []*machine, anchor time.Time, p *profile) {
	if len(machines) == 0 {
		return
	}
	n := min(5000, max(5, len(machines)/10))
	b := DefaultActionBehaviour()
	analysts := []string{"soc-analyst@" + p.tenantDomain, "ir-lead@" + p.tenantDomain, "secops@" + p.tenantDomain}
	automation := randomGUID(rng)
	created := make([]time.Time, n)
	for i := range created {
		created[i] = anchor.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(100 * time.Nanosecond)
	}
	slices.SortFunc(created, func(a, b time.Time) int { return a.Compare(b) })
	for i := range n {
		m := machines[rng.IntN(len(machines))]
		typ := pick(rng, historyTypes)
		a := &machineAction{
			ID: randomGUID(rng), Type: typ, MachineID: m.ID, ComputerDNSName: m.ComputerDNSName,
			RequestorComment: historyComments[typ][rng.IntN(len(historyComments[typ]))],
			Created:          created[i], RequestSource: "Portal",
		}
		a.VisibleAt = a.Created
		if rng.IntN(4) == 0 {
			a.Requestor, a.RequestSource = automation, "PublicApi"
		} else {
			a.Requestor = analysts[rng.IntN(len(analysts))]
		}
		switch typ {
		case typeIsolate:
			a.Scope = some(pick(rng, []weighted[string]{{"Full", 8}, {"Selective", 2}}))
		case typeScan:
			a.Scope = some(pick(rng, []weighted[string]{{"Quick", 7}, {"Full", 3}}))
		case typeQuarantine:
			f := r.catalog.files[rng.IntN(len(r.catalog.files))]
			a.RelatedFile = &relatedFile{Identifier: f.SHA1, Type: "Sha1"}
		case typeLiveResponse:
			a.Commands = []lrCommand{{Type: "RunScript", Params: [][2]string{{"ScriptName", "triage.ps1"}}}}
		}
		jitter := func(d int64) time.Duration { return ms(d/2 + rng.Int64N(d+1)) }
		outcome := pick(rng, []weighted[string]{{statusSucceeded, 90}, {statusFailed, 6}, {statusCancelled, 4}})
		if m.HealthStatus != "Active" || m.OnboardingStatus != "Onboarded" {
			outcome = statusTimeOut // an offline device never picks an action up
		}
		switch outcome {
		case statusTimeOut:
			a.DoneAt, a.Outcome = a.Created.Add(ms(b.TimeoutMs)), statusTimeOut
		default:
			a.PickedAt = a.Created.Add(jitter(b.PendingMs))
			a.DoneAt, a.Outcome = a.PickedAt.Add(jitter(b.RunMs)), outcome
			if outcome == statusCancelled {
				a.Outcome = statusSucceeded
				a.Cancel = &actionCancel{At: a.Created.Add(ms(b.PendingMs / 2)), Requestor: analysts[0], Comment: "Cancelled by analyst"}
			}
		}
		r.addLocked(a)
	}
}
