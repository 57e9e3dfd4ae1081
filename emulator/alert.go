package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// jsonField ties one JSON property of T to its schema entry, encoder and
// decoder; a table of them, in the live key order, is an entity's wire form.
type jsonField[T any] struct {
	name       string
	typ        odata.Type
	filterable bool // documented as filterable (mde-api.md §2.3)
	get        func(T) odata.Value
	enc        func([]byte, T) []byte
	dec        func(T, json.RawMessage) error
}

func strF[T any](name string, filterable bool, p func(T) *string) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.String, filterable: filterable,
		get: func(x T) odata.Value { return odata.Value{Str: *p(x)} },
		enc: func(b []byte, x T) []byte { return appendString(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s != nil {
				*p(x) = *s
			}
			return nil
		},
	}
}

func optStrF[T any](name string, filterable bool, p func(T) *opt[string]) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.String, filterable: filterable,
		get: func(x T) odata.Value { return optValue(*p(x)) },
		enc: func(b []byte, x T) []byte { return appendOptString(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error { return decodeOpt(raw, p(x)) },
	}
}

func optIntF[T any](name string, filterable bool, p func(T) *opt[int64]) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.Int, filterable: filterable,
		get: func(x T) odata.Value {
			v := *p(x)
			if !v.OK {
				return odata.Value{Null: true}
			}
			return odata.Value{Int: v.V, Float: float64(v.V)}
		},
		enc: func(b []byte, x T) []byte { return appendOptInt(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error { return decodeOpt(raw, p(x)) },
	}
}

// timeF is a DateTimeOffset; the zero time is null.
func timeF[T any](name string, filterable bool, p func(T) *time.Time) jsonField[T] {
	return jsonField[T]{
		name: name, typ: odata.DateTime, filterable: filterable,
		get: func(x T) odata.Value { return timeValue(*p(x)) },
		enc: func(b []byte, x T) []byte { return appendTime(b, *p(x)) },
		dec: func(x T, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s == nil || *s == "" {
				*p(x) = time.Time{}
				return nil
			}
			t, err := odata.ParseDateTime(*s)
			if err != nil {
				return err
			}
			*p(x) = t
			return nil
		},
	}
}

// complexF is an object or a list: encoded and decoded whole, never
// filtered or sorted on.
func complexF[T any](name string, enc func([]byte, T) []byte, dec func(T, json.RawMessage) error) jsonField[T] {
	return jsonField[T]{name: name, typ: odata.Complex, get: func(T) odata.Value { return odata.Value{Null: true} }, enc: enc, dec: dec}
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

func fieldIndex[T any](fields []jsonField[T]) map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields {
		m[f.name] = i
	}
	return m
}

// alertSchema is what $filter, $orderby and $select may use on alerts.
var alertSchema = func() *odata.Schema[*alert] {
	var props []odata.Property[*alert]
	for _, f := range alertFields {
		props = append(props, odata.Property[*alert]{
			Name: f.name, Type: f.typ, Filterable: f.filterable,
			Sortable: f.typ != odata.Complex && f.typ != odata.StringCollection,
			Get:      f.get,
		})
	}
	return odata.NewSchema(odata.SchemaOptions{
		// The type name the service shows in OData errors about alerts.
		TypeName:  "microsoft.windowsDefenderATP.api.PublicAlertV2Dto",
		Functions: []string{"startswith"},
	}, props...)
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

// appendObject appends x as a JSON object of fields. prefix, when given, is
// written first inside the braces (a single entity's @odata.context); skip,
// when set, replaces a field's value: fields for which it returns a
// non-nil value are written with that value instead.
func appendObject[T any](b []byte, fields []jsonField[T], x T, prefix []byte, extra []extraField, skip func(i int) []byte) []byte {
	b = append(b, '{')
	first := true
	if len(prefix) > 0 {
		b = append(b, prefix...)
		first = false
	}
	for i := range fields {
		if !first {
			b = append(b, ',')
		}
		first = false
		f := &fields[i]
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		if skip != nil {
			if v := skip(i); v != nil {
				b = append(b, v...)
				continue
			}
		}
		b = f.enc(b, x)
	}
	for _, e := range extra {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, e.Key)
		b = append(b, ':')
		b = append(b, e.Value...)
	}
	return append(b, '}')
}

// decodeObject reads a JSON object into x through fields; keys it does not
// know are returned verbatim (compacted), @odata annotations dropped.
func decodeObject[T any](data []byte, fields []jsonField[T], index map[string]int, x T) ([]extraField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var extra []extraField
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		if i, ok := index[key]; ok {
			if err := fields[i].dec(x, raw); err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			continue
		}
		if strings.HasPrefix(key, "@odata.") {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		extra = append(extra, extraField{Key: key, Value: compact.Bytes()})
	}
	return extra, nil
}

var emptyList = []byte("[]")

// appendAlert appends a as a JSON object; without evidence, "evidence" is
// [] as the list answers without $expand=evidence.
func appendAlert(b []byte, a *alert, withEvidence bool, prefix []byte) []byte {
	var skip func(int) []byte
	if !withEvidence {
		skip = func(i int) []byte {
			if i == evidenceIndex {
				return emptyList
			}
			return nil
		}
	}
	return appendObject(b, alertFields, a, prefix, a.extra, skip)
}

// appendAlertSelected appends only the selected properties of a.
func appendAlertSelected(b []byte, a *alert, selected []string, withEvidence bool) []byte {
	b = append(b, '{')
	for i, name := range selected {
		if i > 0 {
			b = append(b, ',')
		}
		f := &alertFields[alertFieldIndex[name]]
		b = appendString(b, f.name)
		b = append(b, ':')
		if f.name == "evidence" && !withEvidence {
			b = append(b, emptyList...)
			continue
		}
		b = f.enc(b, a)
	}
	return append(b, '}')
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
