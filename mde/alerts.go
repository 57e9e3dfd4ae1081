package mde

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/mdebridge/mdebridge"
)

// MaxAlertsPage is the largest $top that GET /api/alerts accepts.
const MaxAlertsPage = 10000

// The alert wire types decode leniently: a field of an unexpected type is
// left empty instead of failing the alert (Raw keeps it), because one odd
// alert must not stop an incident pipeline. Only an alert without an id is
// refused.
type wireAlert struct {
	ID                 flexString               `json:"id"`
	IncidentID         lenientInt               `json:"incidentId"`
	InvestigationID    lenientInt               `json:"investigationId"`
	AssignedTo         flexString               `json:"assignedTo"`
	Severity           flexString               `json:"severity"`
	Status             flexString               `json:"status"`
	Classification     flexString               `json:"classification"`
	Determination      flexString               `json:"determination"`
	InvestigationState flexString               `json:"investigationState"`
	DetectionSource    flexString               `json:"detectionSource"`
	DetectorID         flexString               `json:"detectorId"`
	Category           flexString               `json:"category"`
	ThreatFamilyName   flexString               `json:"threatFamilyName"`
	ThreatName         flexString               `json:"threatName"`
	Title              flexString               `json:"title"`
	Description        flexString               `json:"description"`
	AlertCreationTime  lenientTime              `json:"alertCreationTime"`
	FirstEventTime     lenientTime              `json:"firstEventTime"`
	LastEventTime      lenientTime              `json:"lastEventTime"`
	LastUpdateTime     lenientTime              `json:"lastUpdateTime"`
	ResolvedTime       lenientTime              `json:"resolvedTime"`
	MachineID          flexString               `json:"machineId"`
	ComputerDNSName    flexString               `json:"computerDnsName"`
	RBACGroupName      flexString               `json:"rbacGroupName"`
	AADTenantID        flexString               `json:"aadTenantId"`
	MitreTechniques    flexStrings              `json:"mitreTechniques"`
	RelatedUser        lenient[wireUser]        `json:"relatedUser"`
	LoggedOnUsers      lenientList[wireUser]    `json:"loggedOnUsers"`
	Comments           lenientList[wireComment] `json:"comments"`
	Evidence           oneOrMany[wireEvidence]  `json:"evidence"`
}

type wireUser struct {
	UserName    flexString `json:"userName"`
	AccountName flexString `json:"accountName"`
	DomainName  flexString `json:"domainName"`
}

type wireComment struct {
	Comment     flexString  `json:"comment"`
	CreatedBy   flexString  `json:"createdBy"`
	CreatedTime lenientTime `json:"createdTime"`
}

type wireEvidence struct {
	EntityType                flexString  `json:"entityType"`
	EvidenceCreationTime      lenientTime `json:"evidenceCreationTime"`
	SHA1                      flexString  `json:"sha1"`
	SHA256                    flexString  `json:"sha256"`
	FileName                  flexString  `json:"fileName"`
	FilePath                  flexString  `json:"filePath"`
	ProcessID                 lenientInt  `json:"processId"`
	ProcessCommandLine        flexString  `json:"processCommandLine"`
	ProcessCreationTime       lenientTime `json:"processCreationTime"`
	ParentProcessID           lenientInt  `json:"parentProcessId"`
	ParentProcessCreationTime lenientTime `json:"parentProcessCreationTime"`
	ParentProcessFileName     flexString  `json:"parentProcessFileName"`
	ParentProcessFilePath     flexString  `json:"parentProcessFilePath"`
	IPAddress                 flexString  `json:"ipAddress"`
	URL                       flexString  `json:"url"`
	RegistryKey               flexString  `json:"registryKey"`
	RegistryHive              flexString  `json:"registryHive"`
	RegistryValueType         flexString  `json:"registryValueType"`
	RegistryValue             flexString  `json:"registryValue"`
	RegistryValueName         flexString  `json:"registryValueName"`
	AccountName               flexString  `json:"accountName"`
	DomainName                flexString  `json:"domainName"`
	UserSID                   flexString  `json:"userSid"`
	AADUserID                 flexString  `json:"aadUserId"`
	UserPrincipalName         flexString  `json:"userPrincipalName"`
	DetectionStatus           flexString  `json:"detectionStatus"`
}

// DecodeAlert decodes one alert object and keeps its raw JSON (without an
// @odata.context). Any field of an unexpected type is left empty; an
// object without an id is an error.
func DecodeAlert(raw json.RawMessage) (mdebridge.Alert, error) {
	var w wireAlert
	if err := json.Unmarshal(raw, &w); err != nil {
		return mdebridge.Alert{}, err
	}
	if w.ID == "" {
		return mdebridge.Alert{}, errors.New("alert without an id")
	}
	a := mdebridge.Alert{
		ID: string(w.ID), IncidentID: int64(w.IncidentID), InvestigationID: int64(w.InvestigationID),
		AssignedTo: string(w.AssignedTo), Severity: string(w.Severity), Status: string(w.Status),
		Classification: string(w.Classification), Determination: string(w.Determination),
		InvestigationState: string(w.InvestigationState), DetectionSource: string(w.DetectionSource),
		DetectorID: string(w.DetectorID), Category: string(w.Category), ThreatFamilyName: string(w.ThreatFamilyName),
		ThreatName: string(w.ThreatName), Title: string(w.Title), Description: string(w.Description),
		AlertCreationTime: time.Time(w.AlertCreationTime), FirstEventTime: time.Time(w.FirstEventTime),
		LastEventTime: time.Time(w.LastEventTime), LastUpdateTime: time.Time(w.LastUpdateTime), ResolvedTime: time.Time(w.ResolvedTime),
		MachineID: string(w.MachineID), ComputerDNSName: string(w.ComputerDNSName), RBACGroupName: string(w.RBACGroupName),
		AADTenantID: string(w.AADTenantID), MitreTechniques: []string(w.MitreTechniques),
		LoggedOnUsers: []mdebridge.LoggedOnUser{}, Comments: []mdebridge.AlertComment{}, Evidence: []mdebridge.Evidence{},
		Raw: dropODataContext(raw),
	}
	if a.MitreTechniques == nil {
		a.MitreTechniques = []string{}
	}
	if u := w.RelatedUser.v; u != nil && (u.UserName != "" || u.DomainName != "") {
		a.RelatedUser = &mdebridge.AlertUser{UserName: string(u.UserName), DomainName: string(u.DomainName)}
	}
	for _, u := range w.LoggedOnUsers {
		a.LoggedOnUsers = append(a.LoggedOnUsers, mdebridge.LoggedOnUser{AccountName: string(u.AccountName), DomainName: string(u.DomainName)})
	}
	for _, c := range w.Comments {
		a.Comments = append(a.Comments, mdebridge.AlertComment{Comment: string(c.Comment), CreatedBy: string(c.CreatedBy), CreatedTime: time.Time(c.CreatedTime)})
	}
	for _, e := range w.Evidence {
		a.Evidence = append(a.Evidence, mdebridge.Evidence{
			EntityType: string(e.EntityType), EvidenceCreationTime: time.Time(e.EvidenceCreationTime),
			SHA1: string(e.SHA1), SHA256: string(e.SHA256), FileName: string(e.FileName), FilePath: string(e.FilePath),
			ProcessID: int64(e.ProcessID), ProcessCommandLine: string(e.ProcessCommandLine), ProcessCreationTime: time.Time(e.ProcessCreationTime),
			ParentProcessID: int64(e.ParentProcessID), ParentProcessCreationTime: time.Time(e.ParentProcessCreationTime),
			ParentProcessFileName: string(e.ParentProcessFileName), ParentProcessFilePath: string(e.ParentProcessFilePath),
			IPAddress: string(e.IPAddress), URL: string(e.URL), RegistryKey: string(e.RegistryKey), RegistryHive: string(e.RegistryHive),
			RegistryValueType: string(e.RegistryValueType), RegistryValue: string(e.RegistryValue), RegistryValueName: string(e.RegistryValueName),
			AccountName: string(e.AccountName), DomainName: string(e.DomainName), UserSID: string(e.UserSID), AADUserID: string(e.AADUserID),
			UserPrincipalName: string(e.UserPrincipalName), DetectionStatus: string(e.DetectionStatus),
		})
	}
	return a, nil
}

// dropODataContext removes the @odata.context member a single entity
// starts with, keeping the rest of the object byte for byte.
func dropODataContext(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return raw
	}
	if key, err := dec.Token(); err != nil || key != "@odata.context" {
		return raw
	}
	var skip json.RawMessage
	if dec.Decode(&skip) != nil {
		return raw
	}
	rest := bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")
	rest = bytes.TrimPrefix(rest, []byte(","))
	return append([]byte{'{'}, rest...)
}

// flexString decodes a string, or a number or boolean as its text; null
// and anything else decode to "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
	case b[0] == '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = flexString(v)
		}
	case b[0] != '{' && b[0] != '[':
		*s = flexString(b)
	}
	return nil
}

// flexStrings decodes a list of strings, or one string (the docs' table
// calls mitreTechniques a String).
type flexStrings []string

func (s *flexStrings) UnmarshalJSON(b []byte) error {
	*s = nil
	var list []flexString
	if json.Unmarshal(b, &list) == nil {
		for _, v := range list {
			*s = append(*s, string(v))
		}
		return nil
	}
	var one flexString
	if json.Unmarshal(b, &one) == nil && one != "" {
		*s = flexStrings{string(one)}
	}
	return nil
}

// lenientInt decodes a number or a numeric string; anything else is 0.
type lenientInt int64

func (n *lenientInt) UnmarshalJSON(b []byte) error {
	var v flexInt
	if v.UnmarshalJSON(b) != nil {
		v = 0
	}
	*n = lenientInt(v)
	return nil
}

// lenientTime decodes any MDE timestamp; anything else is the zero time.
type lenientTime time.Time

func (t *lenientTime) UnmarshalJSON(b []byte) error {
	var ft flexTime
	if ft.UnmarshalJSON(b) != nil {
		ft = flexTime{}
	}
	*t = lenientTime(ft)
	return nil
}

// lenient decodes an object, or leaves v nil for null or another type.
type lenient[T any] struct{ v *T }

func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	l.v = nil
	var v T
	if len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &v) == nil {
		l.v = &v
	}
	return nil
}

// lenientList decodes a list of objects; entries that are not objects,
// and anything that is not a list, are dropped.
type lenientList[T any] []T

func (l *lenientList[T]) UnmarshalJSON(b []byte) error {
	*l = nil
	var raws []json.RawMessage
	if json.Unmarshal(b, &raws) != nil {
		return nil
	}
	for _, r := range raws {
		var one lenient[T]
		one.UnmarshalJSON(r)
		if one.v != nil {
			*l = append(*l, *one.v)
		}
	}
	return nil
}

// oneOrMany is a lenientList that also takes one object as a list of one,
// as Elastic's recordings hold alerts split by evidence.
type oneOrMany[T any] []T

func (l *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		b = append(append([]byte{'['}, b...), ']')
	}
	return (*lenientList[T])(l).UnmarshalJSON(b)
}

// lastUpdateFilter is the $filter of a poll: alerts updated at or after t
// (after it, when strict). The literal is unquoted, with the 0 to 7
// fractional digits MDE uses.
func lastUpdateFilter(t time.Time, strict bool) string {
	op := " ge "
	if strict {
		op = " gt "
	}
	return "lastUpdateTime" + op + t.UTC().Format(time.RFC3339Nano)
}

// ListAlertsPage makes one call of the alert list: alerts updated at or
// after q.Since, oldest first, q.Skip of them skipped, at most q.Top
// (10,000 when 0). An alert without an id is logged and left out, but
// counted in the page's items.
func (c *Client) ListAlertsPage(ctx context.Context, q mdebridge.AlertPageQuery) ([]mdebridge.Alert, int, error) {
	top := q.Top
	if top <= 0 || top > MaxAlertsPage {
		top = MaxAlertsPage
	}
	v := url.Values{"$orderby": {"lastUpdateTime asc"}, "$top": {strconv.Itoa(top)}, "$skip": {strconv.Itoa(q.Skip)}}
	if !q.Since.IsZero() {
		v.Set("$filter", lastUpdateFilter(q.Since, q.Strict))
	}
	if q.ExpandEvidence {
		v.Set("$expand", "evidence")
	}
	const api = "GET /api/alerts"
	var items []json.RawMessage
	_, err := c.do(ctx, request{api: api, method: "GET", url: c.url("/api/alerts", v), page: 1}, func(body io.Reader) error {
		items = items[:0]
		_, err := decodePage(body, &items)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]mdebridge.Alert, 0, len(items))
	for i, raw := range items {
		a, err := DecodeAlert(raw)
		if err != nil {
			c.log.Warn("alert left out", "api", api, "item", i+1, "err", err, "raw", truncate(raw, 200))
			continue
		}
		out = append(out, a)
	}
	return out, len(items), nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// GetAlert returns one alert with its evidence.
func (c *Client) GetAlert(ctx context.Context, id string) (*mdebridge.Alert, error) {
	return c.alertCall(ctx, request{api: "GET /api/alerts/{id}", method: "GET", url: c.url("/api/alerts/"+url.PathEscape(id), nil)})
}

// UpdateAlert changes an alert's triage (PATCH /api/alerts/{id}) and
// returns the alert as MDE now has it.
func (c *Client) UpdateAlert(ctx context.Context, id string, u mdebridge.AlertUpdate) (*mdebridge.Alert, error) {
	if u.IsZero() {
		return nil, fmt.Errorf("update alert %s: %w", id, mdebridge.ErrInvalidUpdate)
	}
	body, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	return c.alertCall(ctx, request{api: "PATCH /api/alerts/{id}", method: "PATCH", url: c.url("/api/alerts/"+url.PathEscape(id), nil), body: body})
}

func (c *Client) alertCall(ctx context.Context, r request) (*mdebridge.Alert, error) {
	var a mdebridge.Alert
	_, err := c.do(ctx, r, func(body io.Reader) error {
		raw, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		a, err = DecodeAlert(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// MaxBatchUpdate is how many alerts BatchUpdateAlerts sends in one call.
// The docs set no maximum; this keeps a call's body and the service's
// work modest.
const MaxBatchUpdate = 500

// BatchUpdateAlerts applies one update to many alerts
// (POST /api/alerts/batchUpdate, 10 calls a minute), MaxBatchUpdate a call.
func (c *Client) BatchUpdateAlerts(ctx context.Context, ids []string, u mdebridge.AlertUpdate) error {
	if u.IsZero() || len(ids) == 0 {
		return fmt.Errorf("batch update alerts: %w", mdebridge.ErrInvalidUpdate)
	}
	for len(ids) > 0 {
		n := min(len(ids), MaxBatchUpdate)
		body, err := json.Marshal(struct {
			AlertIDs []string `json:"alertIds"`
			mdebridge.AlertUpdate
		}{ids[:n], u})
		if err != nil {
			return err
		}
		if _, err := c.do(ctx, request{api: "POST /api/alerts/batchUpdate", method: "POST", url: c.url("/api/alerts/batchUpdate", nil), body: body}, nil); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

var _ mdebridge.AlertSource = (*Client)(nil)
