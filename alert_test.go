package mdebridge_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge"
)

func TestAlertStateDiffAndApply(t *testing.T) {
	a := mdebridge.Alert{ID: "a", Status: "New", Severity: "High", Comments: []mdebridge.AlertComment{{Comment: "first"}},
		Evidence: []mdebridge.Evidence{{EntityType: "File", SHA1: "ab"}}}
	before := a.State()
	u := mdebridge.AlertUpdate{Status: "Resolved", Classification: "TruePositive", Determination: "Malware", Comment: "done"}
	expected := before.Apply(u)
	// MDE applies the change, with its own author and time on the comment:
	// the same state.
	a.ApplyUpdate(u, "app", time.Now())
	a.Comments[1].CreatedBy = "MDE app"
	if diff := expected.Diff(a.State()); len(diff) != 0 {
		t.Errorf("the echo differs: %+v", diff)
	}
	// Applying it again (before and after MDE took it) adds nothing.
	if diff := expected.Diff(expected.Apply(u)); len(diff) != 0 {
		t.Errorf("applied twice: %+v", diff)
	}
	a.ApplyUpdate(u, "app", time.Now())
	if len(a.Comments) != 2 {
		t.Errorf("comment added twice: %+v", a.Comments)
	}
	a.Evidence = append(a.Evidence, mdebridge.Evidence{EntityType: "Ip", IPAddress: "10.0.0.1"})
	a.AssignedTo = "soc@contoso.com"
	got := expected.Diff(a.State())
	want := []mdebridge.FieldChange{{Field: "assignedTo", From: nil, To: "soc@contoso.com"}, {Field: "evidence", From: 1, To: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
	comments := before.Diff(expected)
	if c := comments[len(comments)-1]; c.Field != "comments" || !cmp.Equal(c.To, []string{"done"}) {
		t.Errorf("comments change %+v", c)
	}
}

func TestAlertUpdateValidate(t *testing.T) {
	tests := []struct {
		u     mdebridge.AlertUpdate
		class string
		ok    bool
	}{
		{mdebridge.AlertUpdate{Status: "InProgress"}, "", true},
		{mdebridge.AlertUpdate{Comment: "x"}, "", true},
		{mdebridge.AlertUpdate{}, "", false},
		{mdebridge.AlertUpdate{Status: "Closed"}, "", false},
		{mdebridge.AlertUpdate{Classification: "Benign"}, "", false},
		{mdebridge.AlertUpdate{Determination: "Malware"}, "", false},
		{mdebridge.AlertUpdate{Determination: "Malware"}, "TruePositive", true},
		{mdebridge.AlertUpdate{Determination: "Malware"}, "FalsePositive", false},
		{mdebridge.AlertUpdate{Classification: "FalsePositive", Determination: "NotMalicious"}, "TruePositive", true},
		{mdebridge.AlertUpdate{Classification: "InformationalExpectedActivity", Determination: "ConfirmedUserActivity"}, "", true},
	}
	for _, tt := range tests {
		err := tt.u.Validate(tt.class)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, mdebridge.ErrInvalidUpdate) {
			t.Errorf("%+v with %q: %v", tt.u, tt.class, err)
		}
	}
}

func TestIncidentAggregate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alerts := []mdebridge.Alert{
		{ID: "a", Title: "Low one", Severity: "Low", Status: "Resolved", Category: "Malware", ComputerDNSName: "pc1", AlertCreationTime: t0, LastUpdateTime: t0.Add(time.Hour), Classification: "FalsePositive", Determination: "Clean", AssignedTo: "old@x"},
		{ID: "b", Title: "High one", Severity: "High", Status: "New", Category: "Execution", ComputerDNSName: "pc2", AlertCreationTime: t0.Add(time.Minute), LastUpdateTime: t0.Add(2 * time.Hour), AssignedTo: "new@x", IncidentID: 7},
		{ID: "c", Title: "Odd one", Severity: "Critical", Status: "New", MachineID: "m3", AlertCreationTime: t0.Add(2 * time.Minute), LastUpdateTime: t0.Add(time.Minute)},
	}
	var inc mdebridge.Incident
	inc.Aggregate(alerts)
	want := mdebridge.Incident{Title: "High one (+2 more alerts)", Severity: "High", Status: "InProgress", Classification: "FalsePositive",
		Determination: "Clean", AssignedTo: "new@x", MDEIncidentID: 7, AlertIDs: []string{"a", "b", "c"}, Machines: []string{"m3", "pc1", "pc2"},
		Categories: []string{"Execution", "Malware"}, FirstAlertTime: t0, LastUpdateTime: t0.Add(2 * time.Hour)}
	if diff := cmp.Diff(want, inc); diff != "" {
		t.Errorf("aggregate (-want +got):\n%s", diff)
	}
	inc.Aggregate(alerts[1:2])
	if inc.Title != "High one" || inc.Status != "New" || inc.Classification != "" {
		t.Errorf("one alert: %+v", inc)
	}
}

func TestIncidentFiltersMatch(t *testing.T) {
	a := &mdebridge.Alert{Severity: "High", Status: "New", DetectionSource: "WindowsDefenderAv", RBACGroupName: "Tier 0 Servers"}
	for _, tt := range []struct {
		f    mdebridge.IncidentFilters
		want bool
	}{
		{mdebridge.IncidentFilters{}, true},
		{mdebridge.IncidentFilters{Severities: []string{"medium", "HIGH"}}, true},
		{mdebridge.IncidentFilters{Statuses: []string{"InProgress"}}, false},
		{mdebridge.IncidentFilters{DetectionSources: []string{"WindowsDefenderAtp"}}, false},
		{mdebridge.IncidentFilters{DeviceGroups: []string{"tier 0 servers"}, Severities: []string{"High"}}, true},
	} {
		if got := tt.f.Match(a); got != tt.want {
			t.Errorf("%+v: %v", tt.f, got)
		}
	}
}

func TestIncidentEventECS(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a := &mdebridge.Alert{ID: "da1_2", Title: "Mimikatz", Severity: "High", Category: "CredentialAccess", DetectorID: "d1",
		DetectionSource: "WindowsDefenderAv", MachineID: "m1", ComputerDNSName: "PC1.contoso.com", AADTenantID: "t1",
		MitreTechniques: []string{"T1003"}, ThreatFamilyName: "Mimikatz", AlertCreationTime: created, LastUpdateTime: created.Add(time.Minute),
		RelatedUser: &mdebridge.AlertUser{UserName: "jchen", DomainName: "CONTOSO"},
		Evidence:    []mdebridge.Evidence{{EntityType: "File", SHA1: "AB"}, {EntityType: "Url", URL: "https://evil.example/x"}, {EntityType: "Ip", IPAddress: "185.1.2.3"}},
		Raw:         json.RawMessage(`{"id":"da1_2"}`)}
	in := mdebridge.EventInput{Seq: 42, Action: mdebridge.ActionIncidentCreated, At: created.Add(2 * time.Minute),
		Incident: mdebridge.Incident{ID: 7, Key: "alert:da1_2", Title: "Mimikatz", Severity: "High", Status: "New"}, Alert: a,
		PortalURL: "https://security.microsoft.com"}
	e := mdebridge.NewIncidentEvent(in)
	if e.Event.Sequence != 42 || e.Event.Severity != 73 || e.Event.Type[0] != "start" || e.Event.Reference != "https://security.microsoft.com/alerts/da1_2" ||
		e.Host.Name != "pc1.contoso.com" || e.User.Name != "jchen" || e.Threat.Technique.ID[0] != "T1003" || e.Mdebridge.Event.Kind != "create" ||
		e.Mdebridge.Event.Origin != "mde" || string(e.Mdebridge.Alert) != `{"id":"da1_2"}` {
		t.Errorf("event %+v", e)
	}
	if diff := cmp.Diff(mdebridge.RelatedFields{IP: []string{"185.1.2.3"}, Hash: []string{"ab"}, User: []string{"jchen"},
		Hosts: []string{"pc1.contoso.com", "evil.example"}}, e.Related); diff != "" {
		t.Errorf("related (-want +got):\n%s", diff)
	}
	// The id is stable for the same change and differs for another.
	if again := mdebridge.NewIncidentEvent(in); again.Event.ID != e.Event.ID {
		t.Error("event id not stable")
	}
	in.Alert = &mdebridge.Alert{ID: "da1_2", LastUpdateTime: created.Add(2 * time.Minute)}
	in.Action = mdebridge.ActionAlertUpdated
	if other := mdebridge.NewIncidentEvent(in); other.Event.ID == e.Event.ID || other.Mdebridge.Event.Kind != "update" {
		t.Error("another change has the same id")
	}
}
