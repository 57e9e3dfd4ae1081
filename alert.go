package mdebridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alert is an MDE alert (GET /api/alerts). Field names and JSON tags are
// MDE's own; enumerations (severity, status, category, detection source…)
// are plain strings, because Microsoft adds values and an unknown one must
// be kept, not rejected. Nullable upstream fields decode to their zero
// value; Raw keeps the alert exactly as MDE sent it, evidence included.
type Alert struct {
	ID                 string         `json:"id"`
	IncidentID         int64          `json:"incidentId"`
	InvestigationID    int64          `json:"investigationId"`
	AssignedTo         string         `json:"assignedTo"`
	Severity           string         `json:"severity"`
	Status             string         `json:"status"`
	Classification     string         `json:"classification"`
	Determination      string         `json:"determination"`
	InvestigationState string         `json:"investigationState"`
	DetectionSource    string         `json:"detectionSource"`
	DetectorID         string         `json:"detectorId"`
	Category           string         `json:"category"`
	ThreatFamilyName   string         `json:"threatFamilyName"`
	ThreatName         string         `json:"threatName"`
	Title              string         `json:"title"`
	Description        string         `json:"description"`
	AlertCreationTime  time.Time      `json:"alertCreationTime"`
	FirstEventTime     time.Time      `json:"firstEventTime"`
	LastEventTime      time.Time      `json:"lastEventTime"`
	LastUpdateTime     time.Time      `json:"lastUpdateTime"`
	ResolvedTime       time.Time      `json:"resolvedTime"`
	MachineID          string         `json:"machineId"`
	ComputerDNSName    string         `json:"computerDnsName"`
	RBACGroupName      string         `json:"rbacGroupName"`
	AADTenantID        string         `json:"aadTenantId"`
	MitreTechniques    []string       `json:"mitreTechniques"`
	RelatedUser        *AlertUser     `json:"relatedUser"`
	LoggedOnUsers      []LoggedOnUser `json:"loggedOnUsers"`
	Comments           []AlertComment `json:"comments"`
	Evidence           []Evidence     `json:"evidence"`

	// Raw is the alert exactly as MDE sent it.
	Raw json.RawMessage `json:"-"`

	// Bookkeeping kept by the store, not sent by MDE.
	IncidentRef int64     `json:"-"` // the mdebridge incident it belongs to; 0 when filtered out
	IngestedAt  time.Time `json:"-"` // when mdebridge first stored it
}

// AlertUser is an alert's relatedUser.
type AlertUser struct {
	UserName   string `json:"userName"`
	DomainName string `json:"domainName"`
}

// LoggedOnUser is an entry of an alert's loggedOnUsers.
type LoggedOnUser struct {
	AccountName string `json:"accountName"`
	DomainName  string `json:"domainName"`
}

// AlertComment is a comment on an alert.
type AlertComment struct {
	Comment     string    `json:"comment"`
	CreatedBy   string    `json:"createdBy"`
	CreatedTime time.Time `json:"createdTime"`
}

// Evidence is one entity an alert points at: a file, process, user, IP,
// URL, registry value… MDE sends every key on every entry, unused ones null.
type Evidence struct {
	EntityType                string    `json:"entityType"`
	EvidenceCreationTime      time.Time `json:"evidenceCreationTime"`
	SHA1                      string    `json:"sha1"`
	SHA256                    string    `json:"sha256"`
	FileName                  string    `json:"fileName"`
	FilePath                  string    `json:"filePath"`
	ProcessID                 int64     `json:"processId"`
	ProcessCommandLine        string    `json:"processCommandLine"`
	ProcessCreationTime       time.Time `json:"processCreationTime"`
	ParentProcessID           int64     `json:"parentProcessId"`
	ParentProcessCreationTime time.Time `json:"parentProcessCreationTime"`
	ParentProcessFileName     string    `json:"parentProcessFileName"`
	ParentProcessFilePath     string    `json:"parentProcessFilePath"`
	IPAddress                 string    `json:"ipAddress"`
	URL                       string    `json:"url"`
	RegistryKey               string    `json:"registryKey"`
	RegistryHive              string    `json:"registryHive"`
	RegistryValueType         string    `json:"registryValueType"`
	RegistryValue             string    `json:"registryValue"`
	RegistryValueName         string    `json:"registryValueName"`
	AccountName               string    `json:"accountName"`
	DomainName                string    `json:"domainName"`
	UserSID                   string    `json:"userSid"`
	AADUserID                 string    `json:"aadUserId"`
	UserPrincipalName         string    `json:"userPrincipalName"`
	DetectionStatus           string    `json:"detectionStatus"`
}

// Version is what dedupe compares: an alert's lastUpdateTime, or its
// creation time when MDE sent no lastUpdateTime (the field is nullable).
func (a *Alert) Version() time.Time {
	if !a.LastUpdateTime.IsZero() {
		return a.LastUpdateTime
	}
	return a.AlertCreationTime
}

// Entity is a value an alert mentions, for lookups: a file hash, an IP, a
// URL or host, an account.
type Entity struct {
	Kind  string // file, ip, url, domain, user
	Value string // lower case
}

// Entities lists the distinct values an alert's evidence and related user
// mention.
func (a *Alert) Entities() []Entity {
	var out []Entity
	add := func(kind, v string) {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != "" && !slices.Contains(out, Entity{kind, v}) {
			out = append(out, Entity{kind, v})
		}
	}
	for _, e := range a.Evidence {
		add("file", e.SHA1)
		add("file", e.SHA256)
		add("ip", e.IPAddress)
		if e.URL != "" {
			add("url", e.URL)
			add("domain", urlHost(e.URL))
		}
		add("user", e.AccountName)
	}
	if a.RelatedUser != nil {
		add("user", a.RelatedUser.UserName)
	}
	return out
}

// urlHost is the host of URL evidence, which MDE sends both as a full URL
// ("https://www.google.com/") and as a bare host ("www.google.com").
func urlHost(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// AlertState is what change detection compares of an alert: field name to
// a canonical value. Two versions of an alert with equal states are the
// same as far as an incident is concerned, whatever their lastUpdateTime:
// this is how a change mdebridge itself made (and MDE echoes back) is told
// from a change made in MDE.
type AlertState map[string]string

// stateFields are the scalar fields AlertState compares.
var stateFields = []struct {
	name string
	get  func(*Alert) string
}{
	{"status", func(a *Alert) string { return a.Status }},
	{"severity", func(a *Alert) string { return a.Severity }},
	{"assignedTo", func(a *Alert) string { return a.AssignedTo }},
	{"classification", func(a *Alert) string { return a.Classification }},
	{"determination", func(a *Alert) string { return a.Determination }},
	{"investigationState", func(a *Alert) string { return a.InvestigationState }},
	{"category", func(a *Alert) string { return a.Category }},
	{"title", func(a *Alert) string { return a.Title }},
	{"detectionSource", func(a *Alert) string { return a.DetectionSource }},
	{"threatName", func(a *Alert) string { return a.ThreatName }},
	{"threatFamilyName", func(a *Alert) string { return a.ThreatFamilyName }},
	{"incidentId", func(a *Alert) string { return formatID(a.IncidentID) }},
	{"investigationId", func(a *Alert) string { return formatID(a.InvestigationID) }},
	{"machineId", func(a *Alert) string { return a.MachineID }},
	{"rbacGroupName", func(a *Alert) string { return a.RBACGroupName }},
	{"mitreTechniques", func(a *Alert) string { return strings.Join(a.MitreTechniques, ",") }},
	{"relatedUser", func(a *Alert) string {
		if a.RelatedUser == nil {
			return ""
		}
		return a.RelatedUser.DomainName + `\` + a.RelatedUser.UserName
	}},
}

func formatID(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// State returns the alert's AlertState. Comments compare by their text, in
// order (the author and time MDE gives a comment mdebridge wrote are MDE's
// own); evidence by count and identity.
func (a *Alert) State() AlertState {
	s := AlertState{}
	for _, f := range stateFields {
		if v := f.get(a); v != "" {
			s[f.name] = v
		}
	}
	if len(a.Comments) > 0 {
		texts := make([]string, len(a.Comments))
		for i, c := range a.Comments {
			texts[i] = c.Comment
		}
		s["comments"] = joinList(texts)
	}
	if len(a.Evidence) > 0 {
		ids := make([]string, len(a.Evidence))
		for i, e := range a.Evidence {
			ids[i] = strings.Join([]string{e.EntityType, e.SHA1, e.FilePath, e.FileName, strconv.FormatInt(e.ProcessID, 10), e.IPAddress, e.URL,
				e.RegistryKey, e.RegistryValueName, e.AccountName}, "|")
		}
		s["evidence"] = joinList(ids)
	}
	return s
}

// joinList encodes a list of strings as JSON, so that any text survives.
func joinList(items []string) string {
	b, _ := json.Marshal(items)
	return string(b)
}

func splitList(s string) []string {
	var items []string
	if s != "" {
		_ = json.Unmarshal([]byte(s), &items)
	}
	return items
}

// FieldChange is one field of an alert that changed, in an update event.
type FieldChange struct {
	Field string `json:"field"`
	From  any    `json:"from"`
	To    any    `json:"to"`
}

// Diff lists what changed from s to next, field by field, in a stable
// order. Comments show the comments added; evidence shows the counts.
func (s AlertState) Diff(next AlertState) []FieldChange {
	var out []FieldChange
	for _, f := range stateFields {
		if s[f.name] != next[f.name] {
			out = append(out, FieldChange{Field: f.name, From: nullable(s[f.name]), To: nullable(next[f.name])})
		}
	}
	if s["comments"] != next["comments"] {
		old, now := splitList(s["comments"]), splitList(next["comments"])
		added := now
		if len(now) >= len(old) && slices.Equal(now[:len(old)], old) {
			added = now[len(old):]
		}
		out = append(out, FieldChange{Field: "comments", From: len(old), To: added})
	}
	if s["evidence"] != next["evidence"] {
		out = append(out, FieldChange{Field: "evidence", From: len(splitList(s["evidence"])), To: len(splitList(next["evidence"]))})
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AlertUpdate is a change to an alert's triage, as MDE's update API takes
// it (PATCH /api/alerts/{id}, batchUpdate). Empty fields are left alone;
// Comment adds a comment.
type AlertUpdate struct {
	Status         string `json:"status,omitempty"`
	AssignedTo     string `json:"assignedTo,omitempty"`
	Classification string `json:"classification,omitempty"`
	Determination  string `json:"determination,omitempty"`
	Comment        string `json:"comment,omitempty"`
}

// IsZero reports whether the update changes nothing.
func (u AlertUpdate) IsZero() bool { return u == AlertUpdate{} }

// Values MDE's update API accepts (mde-api.md §4.2, §5.4); the docs name
// some determinations differently on the alert and update pages, and both
// names are accepted.
var (
	AlertStatuses         = []string{"New", "InProgress", "Resolved"}
	AlertClassifications  = []string{"TruePositive", "InformationalExpectedActivity", "FalsePositive"}
	determinationsByClass = map[string][]string{
		"TruePositive":                  {"MultiStagedAttack", "MaliciousUserActivity", "CompromisedUser", "Malware", "Phishing", "UnwantedSoftware", "Other", "NotAvailable"},
		"InformationalExpectedActivity": {"SecurityTesting", "LineOfBusinessApplication", "ConfirmedUserActivity", "ConfirmedActivity", "Other", "NotAvailable"},
		"FalsePositive":                 {"Clean", "NotMalicious", "InsufficientData", "Other", "NotAvailable"},
	}
)

// Determinations returns the determinations that go with a classification.
func Determinations(classification string) []string {
	return slices.Clone(determinationsByClass[classification])
}

// ErrInvalidUpdate is wrapped by the errors of AlertUpdate.Validate.
var ErrInvalidUpdate = errors.New("invalid update")

// Validate checks the update against what MDE accepts. classification is
// the alert's current one, which a determination must belong to unless the
// update sets another.
func (u AlertUpdate) Validate(classification string) error {
	if u.IsZero() {
		return fmt.Errorf("%w: nothing to change", ErrInvalidUpdate)
	}
	if u.Status != "" && !slices.Contains(AlertStatuses, u.Status) {
		return fmt.Errorf("%w: status %q is not one of %s", ErrInvalidUpdate, u.Status, strings.Join(AlertStatuses, ", "))
	}
	if u.Classification != "" {
		if !slices.Contains(AlertClassifications, u.Classification) {
			return fmt.Errorf("%w: classification %q is not one of %s", ErrInvalidUpdate, u.Classification, strings.Join(AlertClassifications, ", "))
		}
		classification = u.Classification
	}
	if u.Determination != "" {
		if classification == "" {
			return fmt.Errorf("%w: a determination needs a classification (%s)", ErrInvalidUpdate, strings.Join(AlertClassifications, ", "))
		}
		if ds := determinationsByClass[classification]; !slices.Contains(ds, u.Determination) {
			return fmt.Errorf("%w: determination %q does not go with classification %s (%s)", ErrInvalidUpdate, u.Determination, classification, strings.Join(ds, ", "))
		}
	}
	return nil
}

// Apply returns the state an alert in state s has once MDE applied u. A
// comment already among the alert's comments is not added again, so that
// applying a change twice (before and after MDE took it) is harmless.
func (s AlertState) Apply(u AlertUpdate) AlertState {
	next := AlertState{}
	for k, v := range s {
		next[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			next[k] = v
		}
	}
	set("status", u.Status)
	set("assignedTo", u.AssignedTo)
	set("classification", u.Classification)
	set("determination", u.Determination)
	if cs := splitList(s["comments"]); u.Comment != "" && !slices.Contains(cs, u.Comment) {
		next["comments"] = joinList(append(cs, u.Comment))
	}
	return next
}

// ApplyUpdate changes the alert as MDE would on u: its triage fields, and a
// comment by author at at (unless the alert already has that comment).
func (a *Alert) ApplyUpdate(u AlertUpdate, author string, at time.Time) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&a.Status, u.Status)
	set(&a.AssignedTo, u.AssignedTo)
	set(&a.Classification, u.Classification)
	set(&a.Determination, u.Determination)
	if u.Comment != "" && !slices.ContainsFunc(a.Comments, func(c AlertComment) bool { return c.Comment == u.Comment }) {
		a.Comments = append(a.Comments, AlertComment{Comment: u.Comment, CreatedBy: author, CreatedTime: at.UTC()})
	}
}

// AlertFilter selects alerts in the store. Empty fields do not filter;
// string matches are case-insensitive.
type AlertFilter struct {
	Severity        string
	Status          string
	DetectionSource string
	Category        string
	RBACGroup       string    // device group name
	Machine         string    // machine id or computer name
	Incident        int64     // the mdebridge incident
	Entity          string    // a hash, IP, URL, host or account the alert mentions
	UpdatedSince    time.Time // lastUpdateTime at or after

	Offset int
	Limit  int // 0 means no limit
}

// AlertStore keeps the alerts the incident pipeline has ingested.
type AlertStore interface {
	// FindAlerts returns the alerts that match f, most recently updated
	// first, and the total number of matches before Offset and Limit.
	FindAlerts(ctx context.Context, f AlertFilter) ([]Alert, int, error)
	// GetAlert returns one alert by id, or a *NotFoundError.
	GetAlert(ctx context.Context, id string) (*Alert, error)
}

// AlertPageQuery is one call of the alert list: the alerts updated at or
// after Since (after it, when Strict), oldest first, Skip of them skipped,
// at most Top.
type AlertPageQuery struct {
	Since          time.Time
	Strict         bool
	Skip, Top      int
	ExpandEvidence bool
}

// AlertSource reads and updates alerts in MDE.
type AlertSource interface {
	// ListAlertsPage returns the alerts of one page and how many items the
	// page held (alerts it could not use, such as one without an id, are
	// left out but counted: a full page means there may be more).
	ListAlertsPage(ctx context.Context, q AlertPageQuery) ([]Alert, int, error)
	UpdateAlert(ctx context.Context, id string, u AlertUpdate) (*Alert, error)
	BatchUpdateAlerts(ctx context.Context, ids []string, u AlertUpdate) error
}
