package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// alert is the emulator's model of an MDE alert (mde-api.md §4.2), kept
// apart from the client's domain type. Like a machine, an alert in a Tenant
// is never changed: an update replaces it with a modified copy, so a
// response can be encoded without holding a lock.
type alert struct {
	ID                 string
	IncidentID         opt[int64]
	InvestigationID    opt[int64]
	AssignedTo         opt[string]
	Severity           string
	Status             string
	Classification     opt[string]
	Determination      opt[string]
	InvestigationState opt[string]
	DetectionSource    string
	DetectorID         string
	Category           string
	ThreatFamilyName   opt[string]
	Title              string
	Description        string
	AlertCreationTime  time.Time
	FirstEventTime     time.Time // zero: null
	LastEventTime      time.Time // zero: null
	LastUpdateTime     time.Time
	ResolvedTime       time.Time // zero: null
	MachineID          string
	ComputerDNSName    opt[string]
	RBACGroupName      opt[string]
	AADTenantID        string
	ThreatName         opt[string]
	MitreTechniques    []string
	RelatedUser        *alertUser
	LoggedOnUsers      []alertUser
	Comments           []alertComment
	Evidence           []evidence
	Domains            []json.RawMessage // live captures only ever show []

	// What the API shows only through /api/alerts/{id}/domains and /ips:
	// the network activity behind the alert, beyond its evidence.
	relatedDomains []string
	relatedIPs     []string
	// visibleAt is when the alert shows in the API. The service indexes
	// alerts with a delay, so an alert may appear with a lastUpdateTime
	// already behind a client's watermark.
	visibleAt time.Time
	// byReference marks alerts made by CreateAlertByReference, which merges
	// a second call for the same title and device into the open alert.
	byReference bool

	extra []extraField // fields of a loaded payload the emulator does not model
}

// alertUser is relatedUser {userName, domainName} or an entry of
// loggedOnUsers {accountName, domainName}: the same pair under two names.
type alertUser struct {
	Name   string
	Domain string
}

type alertComment struct {
	Comment     string
	CreatedBy   string
	CreatedTime time.Time
}

// evidence is one entry of an alert's evidence. Every key is always sent,
// unused ones null (live captures).
type evidence struct {
	EntityType                string
	EvidenceCreationTime      time.Time
	SHA1                      opt[string]
	SHA256                    opt[string]
	FileName                  opt[string]
	FilePath                  opt[string]
	ProcessID                 opt[int64]
	ProcessCommandLine        opt[string]
	ProcessCreationTime       time.Time
	ParentProcessID           opt[int64]
	ParentProcessCreationTime time.Time
	ParentProcessFileName     opt[string]
	ParentProcessFilePath     opt[string]
	IPAddress                 opt[string]
	URL                       opt[string]
	RegistryKey               opt[string]
	RegistryHive              opt[string]
	RegistryValueType         opt[string]
	RegistryValue             opt[string]
	RegistryValueName         opt[string]
	AccountName               opt[string]
	DomainName                opt[string]
	UserSID                   opt[string]
	AADUserID                 opt[string]
	UserPrincipalName         opt[string]
	DetectionStatus           opt[string]

	extra []extraField
}

// clone returns a copy whose lists may be changed without affecting a.
func (a *alert) clone() *alert {
	c := *a
	c.MitreTechniques = append([]string{}, a.MitreTechniques...)
	c.LoggedOnUsers = append([]alertUser{}, a.LoggedOnUsers...)
	c.Comments = append([]alertComment{}, a.Comments...)
	c.Evidence = append([]evidence{}, a.Evidence...)
	if a.RelatedUser != nil {
		u := *a.RelatedUser
		c.RelatedUser = &u
	}
	return &c
}

// alertFields is the Alert entity as the live service serves it
// (testdata/fixtures/observed/get_alert.json), in its key order.
var alertFields = []jsonField[*alert]{
	strF("id", true, func(a *alert) *string { return &a.ID }),
	optIntF("incidentId", true, func(a *alert) *opt[int64] { return &a.IncidentID }),
	optIntF("investigationId", true, func(a *alert) *opt[int64] { return &a.InvestigationID }),
	optStrF("assignedTo", true, func(a *alert) *opt[string] { return &a.AssignedTo }),
	strF("severity", true, func(a *alert) *string { return &a.Severity }),
	strF("status", true, func(a *alert) *string { return &a.Status }),
	optStrF("classification", false, func(a *alert) *opt[string] { return &a.Classification }),
	optStrF("determination", false, func(a *alert) *opt[string] { return &a.Determination }),
	optStrF("investigationState", false, func(a *alert) *opt[string] { return &a.InvestigationState }),
	strF("detectionSource", true, func(a *alert) *string { return &a.DetectionSource }),
	strF("detectorId", false, func(a *alert) *string { return &a.DetectorID }),
	strF("category", true, func(a *alert) *string { return &a.Category }),
	optStrF("threatFamilyName", false, func(a *alert) *opt[string] { return &a.ThreatFamilyName }),
	strF("title", false, func(a *alert) *string { return &a.Title }),
	strF("description", false, func(a *alert) *string { return &a.Description }),
	timeF("alertCreationTime", true, func(a *alert) *time.Time { return &a.AlertCreationTime }),
	timeF("firstEventTime", false, func(a *alert) *time.Time { return &a.FirstEventTime }),
	timeF("lastEventTime", true, func(a *alert) *time.Time { return &a.LastEventTime }),
	timeF("lastUpdateTime", true, func(a *alert) *time.Time { return &a.LastUpdateTime }),
	timeF("resolvedTime", false, func(a *alert) *time.Time { return &a.ResolvedTime }),
	strF("machineId", false, func(a *alert) *string { return &a.MachineID }),
	optStrF("computerDnsName", false, func(a *alert) *opt[string] { return &a.ComputerDNSName }),
	optStrF("rbacGroupName", false, func(a *alert) *opt[string] { return &a.RBACGroupName }),
	strF("aadTenantId", false, func(a *alert) *string { return &a.AADTenantID }),
	optStrF("threatName", false, func(a *alert) *opt[string] { return &a.ThreatName }),
	{
		name: "mitreTechniques", typ: odata.StringCollection,
		get: func(a *alert) odata.Value { return odata.Value{List: a.MitreTechniques} },
		enc: func(b []byte, a *alert) []byte { return appendStrings(b, a.MitreTechniques) },
		dec: func(a *alert, raw json.RawMessage) error { return decodeList(raw, &a.MitreTechniques) },
	},
	complexF("relatedUser", appendRelatedUser, decodeRelatedUser),
	complexF("loggedOnUsers", func(b []byte, a *alert) []byte { return appendUsers(b, a.LoggedOnUsers, "accountName") }, decodeLoggedOnUsers),
	complexF("comments", appendComments, decodeComments),
	complexF("evidence", appendEvidenceList, decodeEvidenceList),
	complexF("domains", func(b []byte, a *alert) []byte { return appendRawList(b, a.Domains) }, func(a *alert, raw json.RawMessage) error { return decodeList(raw, &a.Domains) }),
}

var alertFieldIndex = fieldIndex(alertFields)

// evidenceIndex is where "evidence" sits in alertFields: a list without
// $expand=evidence serves it as [].
var evidenceIndex = alertFieldIndex["evidence"]

// alertSchema is what $filter, $orderby and $select may use on alerts.
var alertSchema = func() *odata.Schema[*alert] {
	return odata.NewSchema(odata.SchemaOptions{
		// The type name the service shows in OData errors about alerts.
		TypeName:  "microsoft.windowsDefenderATP.api.PublicAlertV2Dto",
		Functions: []string{"startswith"},
	}, schemaProperties(alertFields)...)
}()

func decodeList[E any](raw json.RawMessage, dst *[]E) error {
	var v []E
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if v == nil {
		v = []E{}
	}
	*dst = v
	return nil
}

func appendRawList(b []byte, items []json.RawMessage) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

func appendRelatedUser(b []byte, a *alert) []byte {
	if a.RelatedUser == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"userName":`...)
	b = appendString(b, a.RelatedUser.Name)
	b = append(b, `,"domainName":`...)
	b = appendString(b, a.RelatedUser.Domain)
	return append(b, '}')
}

func appendUsers(b []byte, us []alertUser, nameKey string) []byte {
	b = append(b, '[')
	for i, u := range us {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"`...)
		b = append(b, nameKey...)
		b = append(b, `":`...)
		b = appendString(b, u.Name)
		b = append(b, `,"domainName":`...)
		b = appendString(b, u.Domain)
		b = append(b, '}')
	}
	return append(b, ']')
}

func decodeRelatedUser(a *alert, raw json.RawMessage) error {
	var u *struct {
		UserName   string `json:"userName"`
		DomainName string `json:"domainName"`
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	a.RelatedUser = nil
	if u != nil {
		a.RelatedUser = &alertUser{Name: u.UserName, Domain: u.DomainName}
	}
	return nil
}

func decodeLoggedOnUsers(a *alert, raw json.RawMessage) error {
	var us []struct {
		AccountName string `json:"accountName"`
		DomainName  string `json:"domainName"`
	}
	if err := json.Unmarshal(raw, &us); err != nil {
		return err
	}
	a.LoggedOnUsers = make([]alertUser, 0, len(us))
	for _, u := range us {
		a.LoggedOnUsers = append(a.LoggedOnUsers, alertUser{Name: u.AccountName, Domain: u.DomainName})
	}
	return nil
}

func appendComments(b []byte, a *alert) []byte {
	b = append(b, '[')
	for i, c := range a.Comments {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"comment":`...)
		b = appendString(b, c.Comment)
		b = append(b, `,"createdBy":`...)
		b = appendString(b, c.CreatedBy)
		b = append(b, `,"createdTime":`...)
		b = appendTime(b, c.CreatedTime)
		b = append(b, '}')
	}
	return append(b, ']')
}

func decodeComments(a *alert, raw json.RawMessage) error {
	var cs []struct {
		Comment     string  `json:"comment"`
		CreatedBy   string  `json:"createdBy"`
		CreatedTime *string `json:"createdTime"`
	}
	if err := json.Unmarshal(raw, &cs); err != nil {
		return err
	}
	a.Comments = make([]alertComment, 0, len(cs))
	for _, c := range cs {
		ac := alertComment{Comment: c.Comment, CreatedBy: c.CreatedBy}
		if c.CreatedTime != nil && *c.CreatedTime != "" {
			t, err := odata.ParseDateTime(*c.CreatedTime)
			if err != nil {
				return err
			}
			ac.CreatedTime = t
		}
		a.Comments = append(a.Comments, ac)
	}
	return nil
}

// evidenceFields is one evidence entry in the live key order
// (observed/get_machine_related_alerts.json; registryValueName is live-only).
var evidenceFields = []jsonField[*evidence]{
	strF("entityType", false, func(e *evidence) *string { return &e.EntityType }),
	timeF("evidenceCreationTime", false, func(e *evidence) *time.Time { return &e.EvidenceCreationTime }),
	optStrF("sha1", false, func(e *evidence) *opt[string] { return &e.SHA1 }),
	optStrF("sha256", false, func(e *evidence) *opt[string] { return &e.SHA256 }),
	optStrF("fileName", false, func(e *evidence) *opt[string] { return &e.FileName }),
	optStrF("filePath", false, func(e *evidence) *opt[string] { return &e.FilePath }),
	optIntF("processId", false, func(e *evidence) *opt[int64] { return &e.ProcessID }),
	optStrF("processCommandLine", false, func(e *evidence) *opt[string] { return &e.ProcessCommandLine }),
	timeF("processCreationTime", false, func(e *evidence) *time.Time { return &e.ProcessCreationTime }),
	optIntF("parentProcessId", false, func(e *evidence) *opt[int64] { return &e.ParentProcessID }),
	timeF("parentProcessCreationTime", false, func(e *evidence) *time.Time { return &e.ParentProcessCreationTime }),
	optStrF("parentProcessFileName", false, func(e *evidence) *opt[string] { return &e.ParentProcessFileName }),
	optStrF("parentProcessFilePath", false, func(e *evidence) *opt[string] { return &e.ParentProcessFilePath }),
	optStrF("ipAddress", false, func(e *evidence) *opt[string] { return &e.IPAddress }),
	optStrF("url", false, func(e *evidence) *opt[string] { return &e.URL }),
	optStrF("registryKey", false, func(e *evidence) *opt[string] { return &e.RegistryKey }),
	optStrF("registryHive", false, func(e *evidence) *opt[string] { return &e.RegistryHive }),
	optStrF("registryValueType", false, func(e *evidence) *opt[string] { return &e.RegistryValueType }),
	optStrF("registryValue", false, func(e *evidence) *opt[string] { return &e.RegistryValue }),
	optStrF("registryValueName", false, func(e *evidence) *opt[string] { return &e.RegistryValueName }),
	optStrF("accountName", false, func(e *evidence) *opt[string] { return &e.AccountName }),
	optStrF("domainName", false, func(e *evidence) *opt[string] { return &e.DomainName }),
	optStrF("userSid", false, func(e *evidence) *opt[string] { return &e.UserSID }),
	optStrF("aadUserId", false, func(e *evidence) *opt[string] { return &e.AADUserID }),
	optStrF("userPrincipalName", false, func(e *evidence) *opt[string] { return &e.UserPrincipalName }),
	optStrF("detectionStatus", false, func(e *evidence) *opt[string] { return &e.DetectionStatus }),
}

var evidenceFieldIndex = fieldIndex(evidenceFields)

func appendEvidenceList(b []byte, a *alert) []byte {
	b = append(b, '[')
	for i := range a.Evidence {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendObject(b, evidenceFields, &a.Evidence[i], nil, a.Evidence[i].extra, nil)
	}
	return append(b, ']')
}

func decodeEvidenceList(a *alert, raw json.RawMessage) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return err
	}
	a.Evidence = make([]evidence, 0, len(items))
	for i, it := range items {
		var e evidence
		extra, err := decodeObject(it, evidenceFields, evidenceFieldIndex, &e)
		if err != nil {
			return fmt.Errorf("evidence %d: %w", i, err)
		}
		e.extra = extra
		a.Evidence = append(a.Evidence, e)
	}
	return nil
}

var emptyList = []byte("[]")

// appendAlert appends a as a JSON object; without evidence, "evidence" is
// [] as the list answers without $expand=evidence.
func appendAlert(b []byte, a *alert, withEvidence bool, prefix []byte) []byte {
	return appendObject(b, alertFields, a, prefix, a.extra, evidenceSkip(withEvidence))
}

// evidenceSkip serves "evidence" as [] unless it is wanted.
func evidenceSkip(withEvidence bool) func(int) []byte {
	if withEvidence {
		return nil
	}
	return func(i int) []byte {
		if i == evidenceIndex {
			return emptyList
		}
		return nil
	}
}

// appendAlertSelected appends only the selected properties of a, in the
// order $select names them.
func appendAlertSelected(b []byte, a *alert, selected []string, withEvidence bool) []byte {
	which := make([]int, len(selected))
	for i, name := range selected {
		which[i] = alertFieldIndex[name]
	}
	return appendSelected(b, alertFields, a, which, evidenceSkip(withEvidence))
}

// decodeAlert reads one alert as the live service (or a tenant file) writes
// it. Known fields must have their live JSON type; unknown ones are kept.
// A loaded alert is visible at once.
func decodeAlert(data []byte) (*alert, error) {
	a := &alert{MitreTechniques: []string{}, LoggedOnUsers: []alertUser{}, Comments: []alertComment{}, Evidence: []evidence{}, Domains: []json.RawMessage{}}
	extra, err := decodeObject(data, alertFields, alertFieldIndex, a)
	if err != nil {
		return nil, err
	}
	a.extra = extra
	if a.ID == "" {
		return nil, errors.New("alert has no id")
	}
	if a.LastUpdateTime.IsZero() {
		a.LastUpdateTime = a.AlertCreationTime
	}
	return a, nil
}
