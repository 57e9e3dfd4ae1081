package mde

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// MaxActionsPage is the largest $top that GET /api/machineactions accepts.
const MaxActionsPage = 10000

// ActionParams are what an action request carries besides its type: the
// comment (required by MDE for every action) and the type's own parameters.
type ActionParams struct {
	Comment       string
	IsolationType string                       // Isolate: Full, Selective, UnManagedDevice
	ScanType      string                       // RunAntiVirusScan: Quick, Full
	Sha1          string                       // StopAndQuarantineFile
	Commands      []mdebridge.LiveResponseSpec // LiveResponse
}

// actionPaths maps an action type to the path segment that creates it.
var actionPaths = map[string]string{
	mdebridge.ActionIsolate:        "isolate",
	mdebridge.ActionUnisolate:      "unisolate",
	mdebridge.ActionScan:           "runAntiVirusScan",
	mdebridge.ActionCollect:        "collectInvestigationPackage",
	mdebridge.ActionRestrict:       "restrictCodeExecution",
	mdebridge.ActionUnrestrict:     "unrestrictCodeExecution",
	mdebridge.ActionQuarantineFile: "StopAndQuarantineFile",
	mdebridge.ActionOffboard:       "offboard",
	mdebridge.ActionLiveResponse:   "runliveresponse",
}

// ActionAPI names the API that creates actions of a type, as limits and
// counts name it ("POST /api/machines/{id}/isolate").
func ActionAPI(actionType string) string {
	return "POST /api/machines/{id}/" + actionPaths[actionType]
}

// RunAction asks MDE for an action of actionType on a machine. The answer
// may be a new action or, when one of the same type is pending, that one
// (MDE decides); a refusal because one is pending is an *APIError for which
// IsActiveRequest is true.
func (c *Client) RunAction(ctx context.Context, machineID, actionType string, p ActionParams) (*mdebridge.MachineAction, error) {
	seg, ok := actionPaths[actionType]
	if !ok {
		return nil, fmt.Errorf("unknown action type %q", actionType)
	}
	body := map[string]any{"Comment": p.Comment}
	switch actionType {
	case mdebridge.ActionIsolate:
		if p.IsolationType != "" {
			body["IsolationType"] = p.IsolationType
		}
	case mdebridge.ActionScan:
		body["ScanType"] = cmp.Or(p.ScanType, "Quick")
	case mdebridge.ActionQuarantineFile:
		body["Sha1"] = p.Sha1
	case mdebridge.ActionLiveResponse:
		body["Commands"] = p.Commands
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.actionCall(ctx, request{api: ActionAPI(actionType), method: "POST",
		url: c.url("/api/machines/"+url.PathEscape(machineID)+"/"+seg, nil), body: data})
}

// IsActiveRequest reports whether err is MDE's refusal of an action because
// an equal one is already in progress (400 ActiveRequestAlreadyExists).
func IsActiveRequest(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == 400 && strings.EqualFold(ae.Code, "ActiveRequestAlreadyExists")
}

func (c *Client) actionCall(ctx context.Context, r request) (*mdebridge.MachineAction, error) {
	return doObject(ctx, c, r, DecodeMachineAction)
}

// GetMachineAction returns one action. MDE may answer 404 for an id it
// handed out a moment ago; callers that just created the action retry.
func (c *Client) GetMachineAction(ctx context.Context, id string) (*mdebridge.MachineAction, error) {
	return c.actionCall(ctx, request{api: "GET /api/machineactions/{id}", method: "GET", url: c.url("/api/machineactions/"+url.PathEscape(id), nil)})
}

// CancelMachineAction cancels an action that is not final yet.
func (c *Client) CancelMachineAction(ctx context.Context, id, comment string) (*mdebridge.MachineAction, error) {
	data, _ := json.Marshal(map[string]string{"Comment": comment})
	return c.actionCall(ctx, request{api: "POST /api/machineactions/{id}/cancel", method: "POST",
		url: c.url("/api/machineactions/"+url.PathEscape(id)+"/cancel", nil), body: data})
}

// ListMachineActionsFiltered hands every action matching an OData $filter
// ("" for all) to page, 10,000 at a time, newest first as MDE orders them.
func (c *Client) ListMachineActionsFiltered(ctx context.Context, filter string, page func([]mdebridge.MachineAction) error) error {
	q := url.Values{}
	if filter != "" {
		q.Set("$filter", filter)
	}
	n := 0
	return c.list(ctx, listOptions{api: "GET /api/machineactions", path: "/api/machineactions", query: q, top: MaxActionsPage},
		func(items []json.RawMessage) error {
			n++
			out := make([]mdebridge.MachineAction, 0, len(items))
			for i, raw := range items {
				a, err := DecodeMachineAction(raw)
				if err != nil {
					return &MalformedPageError{API: "GET /api/machineactions", Page: n, Err: fmt.Errorf("action %d of the page: %w", i+1, err)}
				}
				out = append(out, a)
			}
			return page(out)
		})
}

// ListMachineActions lists the actions updated at or after since (all when
// since is zero).
func (c *Client) ListMachineActions(ctx context.Context, since time.Time, page func([]mdebridge.MachineAction) error) error {
	filter := ""
	if !since.IsZero() {
		filter = "lastUpdateDateTimeUtc ge " + since.UTC().Format(time.RFC3339Nano)
	}
	return c.ListMachineActionsFiltered(ctx, filter, page)
}

// ODataString quotes s as an OData string literal.
func ODataString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// GetPackageURI returns the download link of a collected investigation
// package (2 calls a minute). Until the collection has succeeded MDE
// answers 404.
func (c *Client) GetPackageURI(ctx context.Context, actionID string) (string, error) {
	return c.edmString(ctx, request{api: "GET /api/machineactions/{id}/getPackageUri", method: "GET",
		url: c.url("/api/machineactions/"+url.PathEscape(actionID)+"/getPackageUri", nil)})
}

// GetLiveResponseResultLink returns the download link of the result of
// live response command index (valid 30 minutes).
func (c *Client) GetLiveResponseResultLink(ctx context.Context, actionID string, index int) (string, error) {
	return c.edmString(ctx, request{api: "GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink", method: "GET",
		url: c.url("/api/machineactions/"+url.PathEscape(actionID)+"/GetLiveResponseResultDownloadLink(index="+strconv.Itoa(index)+")", nil)})
}

// edmString reads a {"value": "..."} answer. The docs' example of
// getPackageUri wraps the URL itself in quotes; those are stripped.
func (c *Client) edmString(ctx context.Context, r request) (string, error) {
	var v struct {
		Value *string `json:"value"`
	}
	_, err := c.do(ctx, r, func(body io.Reader) error {
		v.Value = nil
		if err := json.NewDecoder(body).Decode(&v); err != nil {
			return err
		}
		if v.Value == nil {
			return errors.New(`no "value" in the response`)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return strings.Trim(strings.TrimSpace(*v.Value), `"`), nil
}

// StartInvestigation starts an automated investigation on a machine (50 an hour).
func (c *Client) StartInvestigation(ctx context.Context, machineID, comment string) (*mdebridge.Investigation, error) {
	data, _ := json.Marshal(map[string]string{"Comment": comment})
	return doObject(ctx, c, request{api: "POST /api/machines/{id}/startInvestigation", method: "POST",
		url: c.url("/api/machines/"+url.PathEscape(machineID)+"/startInvestigation", nil), body: data}, DecodeInvestigation)
}

// TagMachine adds (or with remove, removes) a tag and returns the machine.
func (c *Client) TagMachine(ctx context.Context, machineID, tag string, remove bool) (*mdebridge.Machine, error) {
	action := "Add"
	if remove {
		action = "Remove"
	}
	data, _ := json.Marshal(map[string]string{"Value": tag, "Action": action})
	return doObject(ctx, c, request{api: "POST /api/machines/{id}/tags", method: "POST",
		url: c.url("/api/machines/"+url.PathEscape(machineID)+"/tags", nil), body: data},
		func(raw json.RawMessage) (mdebridge.Machine, error) { return DecodeMachine(stripODataContext(raw)) })
}

// FindMachinesByIP returns the machines that used an internal IP address
// within 15 minutes of at (which must lie in the last 30 days).
func (c *Client) FindMachinesByIP(ctx context.Context, ip string, at time.Time) ([]mdebridge.Machine, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("find machines by IP: %q is not an IP address", ip)
	}
	u := c.url("/api/machines/", nil) + "findbyip(ip='" + addr.String() + "',timestamp=" + at.UTC().Format("2006-01-02T15:04:05Z") + ")"
	return c.machineCollection(ctx, "GET /api/machines/findbyip", u)
}

// machineCollection reads a collection of machines that is not paged
// (findbyip, files/{sha1}/machines, domains/{d}/machines …).
func (c *Client) machineCollection(ctx context.Context, api, u string) ([]mdebridge.Machine, error) {
	items, err := c.collection(ctx, api, u)
	if err != nil {
		return nil, err
	}
	out, err := decodeMachines(items)
	if err != nil {
		return nil, &MalformedPageError{API: api, Page: 1, Err: err}
	}
	return out, nil
}

// collection reads the items of one unpaged OData collection at u.
func (c *Client) collection(ctx context.Context, api, u string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	_, err := c.do(ctx, request{api: api, method: "GET", url: u, page: 1}, func(body io.Reader) error {
		items = items[:0]
		_, err := decodePage(body, &items)
		return err
	})
	return items, err
}

// wireAction decodes a machine action leniently: both spellings of the last
// update time, timestamps in any MDE form, and the odd shapes of synthetic
// examples (relatedFileInfo as "", commands as plain strings).
type wireAction struct {
	mdebridge.MachineAction
	CreationTime     flexTime          `json:"creationDateTimeUtc"`
	LastUpdate       flexTime          `json:"lastUpdateDateTimeUtc"`
	LastUpdateOld    flexTime          `json:"lastUpdateTimeUtc"`
	CancellationTime flexTime          `json:"cancellationDateTimeUtc"`
	ErrorHResult     flexInt           `json:"errorHResult"`
	Scope            *string           `json:"scope"`
	RelatedFileInfo  json.RawMessage   `json:"relatedFileInfo"`
	Commands         []json.RawMessage `json:"commands"`
}

type wireCommand struct {
	mdebridge.LiveResponseCommand
	StartTime flexTime `json:"startTime"`
	EndTime   flexTime `json:"endTime"`
}

// DecodeMachineAction decodes one machine action and keeps its raw JSON
// (without @odata.context).
func DecodeMachineAction(raw json.RawMessage) (mdebridge.MachineAction, error) {
	raw = stripODataContext(raw)
	var w wireAction
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.MachineAction{}, err
	}
	a := w.MachineAction
	a.CreationTime, a.CancellationTime = time.Time(w.CreationTime), time.Time(w.CancellationTime)
	a.LastUpdateTime = time.Time(w.LastUpdate)
	if a.LastUpdateTime.IsZero() {
		a.LastUpdateTime = time.Time(w.LastUpdateOld)
	}
	a.ErrorHResult = int64(w.ErrorHResult)
	if w.Scope != nil {
		a.Scope = *w.Scope
	}
	if len(w.RelatedFileInfo) > 0 && w.RelatedFileInfo[0] == '{' {
		var f mdebridge.RelatedFileInfo
		if err := json.Unmarshal(w.RelatedFileInfo, &f); err != nil {
			return a, fmt.Errorf("relatedFileInfo: %w", err)
		}
		a.RelatedFileInfo = &f
	}
	a.Commands = nil
	for i, c := range w.Commands {
		if len(c) > 0 && c[0] == '"' {
			// A bare command type (as in a synthetic example).
			var typ string
			json.Unmarshal(c, &typ)
			a.Commands = append(a.Commands, mdebridge.LiveResponseCommand{Index: i, Command: mdebridge.LiveResponseSpec{Type: typ}})
			continue
		}
		var wc wireCommand
		if err := json.Unmarshal(c, &wc); err != nil {
			return a, fmt.Errorf("command %d: %w", i, err)
		}
		cmd := wc.LiveResponseCommand
		cmd.StartTime, cmd.EndTime = time.Time(wc.StartTime), time.Time(wc.EndTime)
		a.Commands = append(a.Commands, cmd)
	}
	a.Raw = raw
	if a.ID == "" {
		return a, errors.New("machine action without an id")
	}
	return a, nil
}

// wireInvestigation decodes an investigation leniently.
type wireInvestigation struct {
	mdebridge.Investigation
	ID        flexString `json:"id"`
	StartTime flexTime   `json:"startTime"`
	EndTime   flexTime   `json:"endTime"`
}

// DecodeInvestigation decodes one investigation and keeps its raw JSON.
func DecodeInvestigation(raw json.RawMessage) (mdebridge.Investigation, error) {
	raw = stripODataContext(raw)
	var w wireInvestigation
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.Investigation{}, err
	}
	inv := w.Investigation
	inv.ID, inv.StartTime, inv.EndTime = string(w.ID), time.Time(w.StartTime), time.Time(w.EndTime)
	inv.Raw = raw
	if inv.ID == "" {
		return inv, errors.New("investigation without an id")
	}
	return inv, nil
}

// ListInvestigations hands every investigation matching filter ("" for
// all) to page.
func (c *Client) ListInvestigations(ctx context.Context, filter string, page func([]mdebridge.Investigation) error) error {
	q := url.Values{}
	if filter != "" {
		q.Set("$filter", filter)
	}
	return c.list(ctx, listOptions{api: "GET /api/investigations", path: "/api/investigations", query: q, top: 10000},
		func(items []json.RawMessage) error {
			out := make([]mdebridge.Investigation, 0, len(items))
			for _, raw := range items {
				inv, err := DecodeInvestigation(raw)
				if err != nil {
					return &MalformedPageError{API: "GET /api/investigations", Page: 1, Err: err}
				}
				out = append(out, inv)
			}
			return page(out)
		})
}

var _ mdebridge.MachineActionSource = (*Client)(nil)
