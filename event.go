package mdebridge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// ECSVersion is the Elastic Common Schema version incident events follow.
const ECSVersion = "8.11.0"

// IncidentEvent is what every sink receives when an incident is created or
// changes (docs/incident-events.md): Elastic Common Schema fields for SIEMs,
// and under "mdebridge" the incident as it now is, what changed, and the MDE
// alert itself exactly as MDE sent it.
type IncidentEvent struct {
	Timestamp time.Time `json:"@timestamp"`
	ECS       struct {
		Version string `json:"version"`
	} `json:"ecs"`
	Event     EventFields    `json:"event"`
	Message   string         `json:"message"`
	Rule      *RuleFields    `json:"rule,omitempty"`
	Threat    *ThreatFields  `json:"threat,omitempty"`
	Host      *HostFields    `json:"host,omitempty"`
	User      *UserFields    `json:"user,omitempty"`
	Observer  ObserverFields `json:"observer"`
	Cloud     *CloudFields   `json:"cloud,omitempty"`
	Related   RelatedFields  `json:"related"`
	Mdebridge EventDetail    `json:"mdebridge"`
}

// EventFields are ECS event.*.
type EventFields struct {
	ID        string     `json:"id"`       // stable: a redelivered event has the same id
	Sequence  int64      `json:"sequence"` // orders all events of this mdebridge
	Kind      string     `json:"kind"`     // alert
	Category  []string   `json:"category"`
	Type      []string   `json:"type"`
	Action    string     `json:"action"` // incident-created, alert-added, alert-updated, incident-updated
	Severity  int        `json:"severity"`
	Created   *time.Time `json:"created,omitempty"` // the alert's creation
	Ingested  time.Time  `json:"ingested"`          // when mdebridge made the event
	Start     *time.Time `json:"start,omitempty"`   // first event of the alert
	End       *time.Time `json:"end,omitempty"`     // last event of the alert
	Provider  string     `json:"provider"`
	Module    string     `json:"module"`
	Dataset   string     `json:"dataset"`
	Reference string     `json:"reference,omitempty"` // the alert in the security portal
}

// RuleFields are ECS rule.*: the detection.
type RuleFields struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Category    string `json:"category,omitempty"`
}

// ThreatFields are ECS threat.*.
type ThreatFields struct {
	Framework string `json:"framework"`
	Technique *struct {
		ID []string `json:"id"`
	} `json:"technique,omitempty"`
	Software *struct {
		Name string `json:"name"`
	} `json:"software,omitempty"`
}

// HostFields are ECS host.*.
type HostFields struct {
	ID       string `json:"id,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Name     string `json:"name,omitempty"`
}

// UserFields are ECS user.*.
type UserFields struct {
	Name   string `json:"name"`
	Domain string `json:"domain,omitempty"`
}

// ObserverFields are ECS observer.*: what detected it.
type ObserverFields struct {
	Vendor  string `json:"vendor"`
	Product string `json:"product"`
	Name    string `json:"name,omitempty"` // MDE's detectionSource
	Type    string `json:"type"`
}

// CloudFields are ECS cloud.*.
type CloudFields struct {
	Account struct {
		ID string `json:"id"`
	} `json:"account"`
}

// RelatedFields are ECS related.*: every IP, hash, user and host the
// alert's evidence mentions, for pivoting.
type RelatedFields struct {
	IP    []string `json:"ip"`
	Hash  []string `json:"hash"`
	User  []string `json:"user"`
	Hosts []string `json:"hosts"`
}

// EventDetail is mdebridge's own part of an event.
type EventDetail struct {
	Event struct {
		Kind    string        `json:"kind"`   // create, update
		Origin  string        `json:"origin"` // mde: seen in MDE; mdebridge: made in mdebridge
		Changes []FieldChange `json:"changes"`
	} `json:"event"`
	Incident Incident        `json:"incident"`
	Alert    json.RawMessage `json:"alert,omitempty"` // the MDE alert, camelCase, evidence included
}

// Event kinds, origins and actions.
const (
	EventCreate = "create"
	EventUpdate = "update"

	OriginMDE       = "mde"
	OriginMdebridge = "mdebridge"

	ActionIncidentCreated = "incident-created"
	ActionAlertAdded      = "alert-added"
	ActionAlertUpdated    = "alert-updated"
	ActionIncidentUpdated = "incident-updated"
)

// EventInput is what an event is made of.
type EventInput struct {
	Seq       int64
	Action    string // one of the Action* constants
	At        time.Time
	Incident  Incident
	Alert     *Alert // the alert the event is about
	Changes   []FieldChange
	PortalURL string // the security portal, for event.reference
	// Discriminator makes the id of a change made in mdebridge unique (its
	// mirror change id); changes seen in MDE are told apart by the alert's
	// version.
	Discriminator string
}

// ecsSeverity maps MDE severities to ECS event.severity as Elastic's own MDE
// integration does.
func ecsSeverity(s string) int {
	switch strings.ToLower(s) {
	case "high":
		return 73
	case "medium":
		return 47
	case "low", "informational":
		return 21
	}
	return 0
}

// NewIncidentEvent builds the event for a change.
func NewIncidentEvent(in EventInput) IncidentEvent {
	var e IncidentEvent
	e.Timestamp = in.At.UTC()
	e.ECS.Version = ECSVersion
	kind, origin := EventUpdate, OriginMDE
	switch in.Action {
	case ActionIncidentCreated:
		kind = EventCreate
	case ActionIncidentUpdated:
		origin = OriginMdebridge
	}
	e.Mdebridge.Event.Kind, e.Mdebridge.Event.Origin = kind, origin
	e.Mdebridge.Event.Changes = in.Changes
	if e.Mdebridge.Event.Changes == nil {
		e.Mdebridge.Event.Changes = []FieldChange{}
	}
	inc := in.Incident
	inc.Comments = nil
	e.Mdebridge.Incident = inc

	e.Event = EventFields{
		Sequence: in.Seq, Kind: "alert", Category: []string{"host", "intrusion_detection"}, Action: in.Action,
		Severity: ecsSeverity(inc.Severity), Ingested: in.At.UTC(),
		Provider: "microsoft-defender-endpoint", Module: "mdebridge", Dataset: "mdebridge.incident",
	}
	switch {
	case kind == EventCreate:
		e.Event.Type = []string{"start"}
	case inc.Status == "Resolved":
		e.Event.Type = []string{"end"}
	default:
		e.Event.Type = []string{"change"}
	}
	e.Message = inc.Title
	e.Observer = ObserverFields{Vendor: "Microsoft", Product: "Defender for Endpoint", Type: "edr"}
	e.Related = RelatedFields{IP: []string{}, Hash: []string{}, User: []string{}, Hosts: []string{}}

	a := in.Alert
	idParts := []string{inc.Key, in.Action, in.Discriminator}
	if a != nil {
		idParts = append(idParts, a.ID, a.Version().UTC().Format(time.RFC3339Nano))
		e.Mdebridge.Alert = a.Raw
		e.Message = a.Title
		e.Event.Severity = ecsSeverity(a.Severity)
		if slices.Contains([]string{"Malware", "Ransomware"}, a.Category) {
			e.Event.Category = append(e.Event.Category, "malware")
		}
		e.Event.Created = timePtr(a.AlertCreationTime)
		e.Event.Start, e.Event.End = timePtr(a.FirstEventTime), timePtr(a.LastEventTime)
		if in.PortalURL != "" {
			e.Event.Reference = strings.TrimSuffix(in.PortalURL, "/") + "/alerts/" + a.ID
		}
		e.Rule = &RuleFields{ID: a.DetectorID, Name: a.Title, Description: a.Description, Category: a.Category}
		if len(a.MitreTechniques) > 0 || a.ThreatFamilyName != "" {
			e.Threat = &ThreatFields{Framework: "MITRE ATT&CK"}
			if len(a.MitreTechniques) > 0 {
				e.Threat.Technique = &struct {
					ID []string `json:"id"`
				}{ID: a.MitreTechniques}
			}
			if a.ThreatFamilyName != "" {
				e.Threat.Software = &struct {
					Name string `json:"name"`
				}{Name: a.ThreatFamilyName}
			}
		}
		if a.MachineID != "" || a.ComputerDNSName != "" {
			e.Host = &HostFields{ID: a.MachineID, Hostname: a.ComputerDNSName, Name: strings.ToLower(a.ComputerDNSName)}
		}
		if a.RelatedUser != nil && a.RelatedUser.UserName != "" {
			e.User = &UserFields{Name: a.RelatedUser.UserName, Domain: a.RelatedUser.DomainName}
		}
		e.Observer.Name = a.DetectionSource
		if a.AADTenantID != "" {
			e.Cloud = &CloudFields{}
			e.Cloud.Account.ID = a.AADTenantID
		}
		e.Related = related(a)
	}
	sum := sha256.Sum256([]byte(strings.Join(idParts, "\x00")))
	e.Event.ID = hex.EncodeToString(sum[:16])
	return e
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func related(a *Alert) RelatedFields {
	r := RelatedFields{IP: []string{}, Hash: []string{}, User: []string{}, Hosts: []string{}}
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	add(&r.Hosts, strings.ToLower(a.ComputerDNSName))
	if a.RelatedUser != nil {
		add(&r.User, a.RelatedUser.UserName)
	}
	for _, ev := range a.Evidence {
		add(&r.IP, ev.IPAddress)
		add(&r.Hash, strings.ToLower(ev.SHA1))
		add(&r.Hash, strings.ToLower(ev.SHA256))
		add(&r.User, ev.AccountName)
		if ev.URL != "" {
			add(&r.Hosts, strings.ToLower(urlHost(ev.URL)))
		}
	}
	for _, u := range a.LoggedOnUsers {
		add(&r.User, u.AccountName)
	}
	return r
}
