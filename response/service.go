// Package response is mdebridge's response service: machine actions
// (isolate, scan, collect, restrict, quarantine, offboard, live response,
// tags, investigations), custom indicators and enrichment, shared by the
// CLI and the REST API.
//
// It is where the peers' mistakes are not repeated: a target is resolved
// before anything is sent (an ambiguous name sends nothing); an action that
// is already pending is joined, never issued twice, and MDE's
// ActiveRequestAlreadyExists counts as a join; a wait polls inside a budget
// of status calls and treats TimeOut as final; a bulk job records each
// target's state so an interrupted run resumes without sending anything
// twice; every request is in the audit log before MDE hears of it.
//
// It must never talk to MDE except through its Client, and never skip the
// audit log.
package response

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// Client is what the service asks of MDE (*mde.Client implements it).
type Client interface {
	GetMachine(ctx context.Context, idOrName string) (*mdebridge.Machine, error)
	FindMachinesByIP(ctx context.Context, ip string, at time.Time) ([]mdebridge.Machine, error)
	TagMachine(ctx context.Context, machineID, tag string, remove bool) (*mdebridge.Machine, error)

	RunAction(ctx context.Context, machineID, actionType string, p mde.ActionParams) (*mdebridge.MachineAction, error)
	GetMachineAction(ctx context.Context, id string) (*mdebridge.MachineAction, error)
	ListMachineActionsFiltered(ctx context.Context, filter string, page func([]mdebridge.MachineAction) error) error
	CancelMachineAction(ctx context.Context, id, comment string) (*mdebridge.MachineAction, error)
	GetPackageURI(ctx context.Context, actionID string) (string, error)
	GetLiveResponseResultLink(ctx context.Context, actionID string, index int) (string, error)
	Download(ctx context.Context, link string, open func() (io.Writer, error)) (int64, error)
	StartInvestigation(ctx context.Context, machineID, comment string) (*mdebridge.Investigation, error)

	SubmitIndicator(ctx context.Context, in mdebridge.Indicator) (*mdebridge.Indicator, error)
	ImportIndicators(ctx context.Context, ins []mdebridge.Indicator) ([]mdebridge.IndicatorResult, error)
	DeleteIndicator(ctx context.Context, id string) error
	BatchDeleteIndicators(ctx context.Context, ids []string) error

	GetFile(ctx context.Context, hash string) (json.RawMessage, error)
	FileStats(ctx context.Context, hash string, lookBackHours int) (json.RawMessage, error)
	FileMachines(ctx context.Context, sha1 string) ([]mdebridge.Machine, error)
	FileAlerts(ctx context.Context, hash string) ([]json.RawMessage, error)
	IPStats(ctx context.Context, ip string, lookBackHours int) (json.RawMessage, error)
	IPAlerts(ctx context.Context, ip string) ([]json.RawMessage, error)
	DomainStats(ctx context.Context, domain string, lookBackHours int) (json.RawMessage, error)
	DomainMachines(ctx context.Context, domain string) ([]mdebridge.Machine, error)
	DomainAlerts(ctx context.Context, domain string) ([]json.RawMessage, error)
	UserMachines(ctx context.Context, user string) ([]mdebridge.Machine, error)
	UserAlerts(ctx context.Context, user string) ([]json.RawMessage, error)
}

// Store is what the service keeps: synced machines to resolve targets,
// actions, the audit log, bulk jobs and indicators.
type Store interface {
	mdebridge.MachineStore
	mdebridge.ActionStore
	mdebridge.AuditStore
	mdebridge.BulkStore
	mdebridge.IndicatorStore
}

// Options configure a Service.
type Options struct {
	Client Client // required
	Store  Store  // required
	Logger *slog.Logger
	// Now is the service's clock (default time.Now). Waits use timers, so
	// tests move time with testing/synctest.
	Now func() time.Time
	// WaitTimeout bounds a wait for actions to finish (default 10 minutes).
	WaitTimeout time.Duration
	// Concurrency is how many calls a bulk job keeps in flight (default 4);
	// the client's rate limiter paces them.
	Concurrency int
	// Indicators fill what indicator files leave out.
	Indicators mdebridge.IndicatorDefaults
	// NewID makes request and job ids (default: random).
	NewID func() string
}

// Service runs response requests.
type Service struct {
	opts Options
	log  *slog.Logger
}

// New returns a service.
func New(opts Options) (*Service, error) {
	if opts.Client == nil || opts.Store == nil {
		return nil, errors.New("response: Client and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 10 * time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.NewID == nil {
		opts.NewID = randomID
	}
	return &Service{opts: opts, log: opts.Logger}, nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) now() time.Time { return s.opts.Now() }

func usage(format string, args ...any) error {
	return &mdebridge.InputError{Msg: fmt.Sprintf(format, args...)}
}

// normalize checks a request and fills its defaults. Nothing is sent for a
// request it refuses.
func (s *Service) normalize(req *mdebridge.ActionRequest) (mdebridge.Operation, error) {
	op, err := mdebridge.LookupOperation(req.Operation)
	if err != nil {
		return op, usage("%v", err)
	}
	req.Comment = strings.TrimSpace(req.Comment)
	if req.Comment == "" {
		return op, usage("a comment is required: say why (--comment); it goes to MDE and to the audit log")
	}
	if req.Actor == "" {
		req.Actor = "unknown"
	}
	if len(req.Targets) == 0 && req.Tag == "" && req.Group == "" {
		return op, usage("name the machines: ids, computer names or IP addresses, or --tag / --group for many")
	}
	if len(req.Targets) > 0 && (req.Tag != "" || req.Group != "") {
		return op, usage("name machines or select them by tag or group, not both")
	}
	pick := func(what, v, def string, allowed map[string]string) (string, error) {
		if v == "" {
			return def, nil
		}
		if c, ok := allowed[strings.ToLower(v)]; ok {
			return c, nil
		}
		var names []string
		for k := range allowed {
			names = append(names, k)
		}
		slices.Sort(names)
		return "", usage("%s %q is not one of %s", what, v, strings.Join(names, ", "))
	}
	switch req.Operation {
	case mdebridge.OpIsolate:
		req.IsolationType, err = pick("isolation type", req.IsolationType, "Full",
			map[string]string{"full": "Full", "selective": "Selective", "unmanaged": "UnManagedDevice", "unmanageddevice": "UnManagedDevice"})
	case mdebridge.OpScan:
		req.ScanType, err = pick("scan type", req.ScanType, "Quick", map[string]string{"quick": "Quick", "full": "Full"})
	case mdebridge.OpQuarantineFile:
		req.Sha1 = strings.ToLower(strings.TrimSpace(req.Sha1))
		if len(req.Sha1) != 40 || strings.Trim(req.Sha1, "0123456789abcdef") != "" {
			err = usage("quarantine-file needs the file's SHA-1 (40 hex digits): %q is not one", req.Sha1)
		}
	case mdebridge.OpLiveResponse:
		err = checkCommands(req.Commands)
	case mdebridge.OpTag:
		req.TagValue = strings.TrimSpace(req.TagValue)
		if req.TagValue == "" || len(req.TagValue) > 200 {
			err = usage("tag needs a tag to add or remove (1 to 200 characters)")
		}
	}
	if req.Timeout <= 0 {
		req.Timeout = s.opts.WaitTimeout
	}
	if req.Concurrency <= 0 {
		req.Concurrency = s.opts.Concurrency
	}
	if req.DownloadDir != "" && !req.Wait {
		err = errors.Join(err, usage("downloads need --wait: the package or result exists once the action has finished"))
	}
	return op, err
}

func checkCommands(cmds []mdebridge.LiveResponseSpec) error {
	if len(cmds) == 0 {
		return usage("live-response needs at least one command (--run-script, --get-file or --put-file)")
	}
	need := map[string]string{"RunScript": "ScriptName", "GetFile": "Path", "PutFile": "FileName"}
	for i, c := range cmds {
		key, ok := need[c.Type]
		if !ok {
			return usage("live response command %d: type %q is not RunScript, GetFile or PutFile", i, c.Type)
		}
		found := false
		for _, p := range c.Params {
			found = found || (p.Key == key && strings.TrimSpace(p.Value) != "")
		}
		if !found {
			return usage("live response command %d (%s) needs %s", i, c.Type, key)
		}
	}
	return nil
}

// params is what MDE is sent for the request's action.
func params(req mdebridge.ActionRequest) mde.ActionParams {
	return mde.ActionParams{Comment: req.Comment, IsolationType: req.IsolationType, ScanType: req.ScanType, Sha1: req.Sha1, Commands: req.Commands}
}

// details is the audit log's record of the request's parameters.
func details(req mdebridge.ActionRequest) json.RawMessage {
	d := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	set("isolationType", req.IsolationType)
	set("scanType", req.ScanType)
	set("sha1", req.Sha1)
	set("tag", req.TagValue)
	if req.TagRemove {
		d["tagAction"] = "Remove"
	}
	if len(req.Commands) > 0 {
		d["commands"] = req.Commands
	}
	if req.Tag != "" || req.Group != "" {
		set("selectTag", req.Tag)
		set("selectGroup", req.Group)
	}
	if len(d) == 0 {
		return nil
	}
	b, _ := json.Marshal(d)
	return b
}

// Respond runs one request: it resolves the targets (any that cannot be
// resolved, or that is ambiguous, stops the request before anything is
// sent), then acts on one machine directly or on several as a bulk job.
func (s *Service) Respond(ctx context.Context, req mdebridge.ActionRequest, progress func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	op, err := s.normalize(&req)
	if err != nil {
		return nil, err
	}
	targets, err := s.resolve(ctx, req)
	if err != nil {
		return nil, err
	}
	rep := &mdebridge.ActionReport{RequestID: s.opts.NewID(), Operation: req.Operation, DryRun: req.DryRun}
	if req.DryRun {
		var entries []*mdebridge.AuditEntry
		for _, t := range targets {
			rep.Outcomes = append(rep.Outcomes, mdebridge.ActionOutcome{MachineID: t.ID, ComputerName: t.Name, Result: mdebridge.AuditDryRun})
			entries = append(entries, s.audit(req, rep.RequestID, t, mdebridge.AuditDryRun))
		}
		return rep, s.opts.Store.AppendAudit(ctx, entries...)
	}
	if op.ActionType == "" || len(targets) == 1 {
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			o, err := s.one(ctx, req, op, rep.RequestID, t)
			rep.Outcomes = append(rep.Outcomes, o)
			if err != nil {
				return rep, err
			}
		}
		return rep, nil
	}
	return s.startBulk(ctx, req, op, rep, targets, progress)
}

// audit makes an audit entry for a request on a target.
func (s *Service) audit(req mdebridge.ActionRequest, requestID string, t Target, result string) *mdebridge.AuditEntry {
	return &mdebridge.AuditEntry{At: s.now(), Actor: req.Actor, Operation: req.Operation, TargetID: t.ID, TargetName: t.Name,
		Comment: req.Comment, RequestID: requestID, Result: result, Details: details(req)}
}

// record appends audit entries; a failure to record is an error of the
// request, so that nothing happens off the record.
func (s *Service) record(ctx context.Context, entries ...*mdebridge.AuditEntry) error {
	// Record even when the request's context ended: what was sent must be known.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opts.Store.AppendAudit(rctx, entries...); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// keep stores actions as MDE last described them.
func (s *Service) keep(ctx context.Context, actions ...*mdebridge.MachineAction) {
	var list []mdebridge.MachineAction
	for _, a := range actions {
		if a != nil && len(a.Raw) > 0 {
			list = append(list, *a)
		}
	}
	if len(list) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opts.Store.UpsertMachineActions(sctx, list); err != nil {
		s.log.Warn("store machine actions", "err", err)
	}
}

// CancelAction cancels a machine action that has not finished.
func (s *Service) CancelAction(ctx context.Context, actionID, comment, actor string) (*mdebridge.MachineAction, error) {
	comment = strings.TrimSpace(comment)
	if comment == "" {
		return nil, usage("a comment is required: say why the action is cancelled (--comment)")
	}
	if actor == "" {
		actor = "unknown"
	}
	t := Target{}
	if a, err := s.opts.Store.GetMachineAction(ctx, actionID); err == nil {
		t = Target{ID: a.MachineID, Name: a.ComputerDNSName}
	}
	req := mdebridge.ActionRequest{Operation: "actions.cancel", Actor: actor, Comment: comment}
	requestID := s.opts.NewID()
	e := s.audit(req, requestID, t, mdebridge.AuditRequested)
	e.ActionID = actionID
	if err := s.record(ctx, e); err != nil {
		return nil, err
	}
	a, err := s.cancel(ctx, actionID, mdeComment(comment, requestID), !t.isZero())
	done := s.audit(req, requestID, t, mdebridge.AuditDone)
	done.ActionID = actionID
	if err != nil {
		done.Result, done.Error = mdebridge.AuditFailed, err.Error()
	} else {
		done.Status, done.TargetID, done.TargetName = a.Status, a.MachineID, a.ComputerDNSName
	}
	if rerr := s.record(ctx, done); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	s.keep(ctx, a)
	return a, nil
}

// cancel asks MDE to cancel an action. An action this store knows may be
// too fresh for MDE to show (404 for a moment), so that is tried again.
func (s *Service) cancel(ctx context.Context, actionID, comment string, known bool) (*mdebridge.MachineAction, error) {
	for wait := time.Second; ; wait *= 2 {
		a, err := s.opts.Client.CancelMachineAction(ctx, actionID, comment)
		if err == nil || !known || !errors.Is(err, mdebridge.ErrNotFound) || wait > 8*time.Second {
			return a, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

var _ mdebridge.Responder = (*Service)(nil)
