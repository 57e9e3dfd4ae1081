package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge"
)

// incidentTests are the suite's alert and incident tests.
var incidentTests = map[string]func(*testing.T, Opener){
	"IngestDedupesByIDAndVersion": testIngestDedupe,
	"IngestFilters":               testIngestFilters,
	"IngestGroupsByMDEIncident":   testIngestGroups,
	"IngestSavesCheckpoint":       testIngestCheckpoint,
	"ChangeIncidentAndEcho":       testChangeIncident,
	"MirrorQueue":                 testMirrorQueue,
	"EventsCursorsAndPruning":     testEventsCursors,
	"Leases":                      testLeases,
	"FindAlerts":                  testFindAlerts,
}

// Alert builds an alert whose raw JSON reflects its fields; mods change it
// before the raw JSON is made.
func Alert(i int, mods ...func(*mdebridge.Alert)) mdebridge.Alert {
	a := mdebridge.Alert{
		ID:                fmt.Sprintf("da6380000000000%05d_%d", i, 1000+i),
		IncidentID:        int64(100 + i),
		Severity:          []string{"Low", "Medium", "High", "Informational"}[i%4],
		Status:            "New",
		DetectionSource:   []string{"WindowsDefenderAtp", "WindowsDefenderAv"}[i%2],
		Category:          []string{"Execution", "Malware", "CredentialAccess"}[i%3],
		Title:             fmt.Sprintf("Suspicious thing %d", i),
		AlertCreationTime: t0.Add(time.Duration(i) * time.Second),
		LastUpdateTime:    t0.Add(time.Duration(i)*time.Second + 3333300*time.Nanosecond),
		MachineID:         fmt.Sprintf("%040x", i%7+1),
		ComputerDNSName:   fmt.Sprintf("host-%04d.contoso.local", i%7),
		RBACGroupName:     []string{"Workstations", "Servers"}[i%2],
		AADTenantID:       "11111111-2222-4333-8444-555555555555",
		MitreTechniques:   []string{"T1059.001"},
		RelatedUser:       &mdebridge.AlertUser{UserName: "jchen", DomainName: "CONTOSO"},
		Comments:          []mdebridge.AlertComment{},
		Evidence: []mdebridge.Evidence{
			{EntityType: "File", SHA1: fmt.Sprintf("%040x", 0xabc000+i), FileName: "payload.exe", FilePath: `C:\Temp`},
			{EntityType: "Ip", IPAddress: fmt.Sprintf("185.220.101.%d", i%250+1)},
		},
	}
	for _, f := range mods {
		f(&a)
	}
	a.Raw, _ = json.Marshal(a)
	return a
}

// version returns a copy of a updated d later, changed by mods.
func version(a mdebridge.Alert, d time.Duration, mods ...func(*mdebridge.Alert)) mdebridge.Alert {
	b := a
	b.Comments = append([]mdebridge.AlertComment{}, a.Comments...)
	b.LastUpdateTime = a.LastUpdateTime.Add(d)
	for _, f := range mods {
		f(&b)
	}
	b.Raw, _ = json.Marshal(b)
	return b
}

func mustIngest(t *testing.T, s mdebridge.Store, o mdebridge.IngestOptions, alerts ...mdebridge.Alert) mdebridge.IngestResult {
	t.Helper()
	r, err := s.IngestAlerts(t.Context(), alerts, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func events(t *testing.T, s mdebridge.Store, after int64) []mdebridge.StoredEvent {
	t.Helper()
	evs, err := s.FindEvents(t.Context(), mdebridge.EventFilter{After: after})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// eventBody decodes the parts of an event body tests look at.
type eventBody struct {
	Event struct {
		ID       string `json:"id"`
		Sequence int64  `json:"sequence"`
		Action   string `json:"action"`
	} `json:"event"`
	Mdebridge struct {
		Event struct {
			Kind    string                  `json:"kind"`
			Origin  string                  `json:"origin"`
			Changes []mdebridge.FieldChange `json:"changes"`
		} `json:"event"`
		Incident mdebridge.Incident `json:"incident"`
		Alert    map[string]any     `json:"alert"`
	} `json:"mdebridge"`
}

func body(t *testing.T, e mdebridge.StoredEvent) eventBody {
	t.Helper()
	var b eventBody
	if err := json.Unmarshal(e.Body, &b); err != nil {
		t.Fatalf("event %d: %v", e.Seq, err)
	}
	if b.Event.Sequence != e.Seq || b.Event.ID != e.ID {
		t.Errorf("event %d: body says sequence %d id %s", e.Seq, b.Event.Sequence, b.Event.ID)
	}
	return b
}

func verdicts(r mdebridge.IngestResult) []mdebridge.Verdict { return r.Verdicts }

var perAlert = mdebridge.IngestOptions{GroupBy: mdebridge.GroupByAlert}

func testIngestDedupe(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	a0, a1, a2 := Alert(0), Alert(1), Alert(2)
	r := mustIngest(t, s, perAlert, a0, a1, a2)
	want := []mdebridge.Verdict{"new", "new", "new"}
	if diff := cmp.Diff(want, verdicts(r)); diff != "" || r.Events != 3 || r.LastSeq != 3 {
		t.Fatalf("first ingest: %v, %d events, last %d", verdicts(r), r.Events, r.LastSeq)
	}
	// The overlap window reads them again: nothing happens.
	r = mustIngest(t, s, perAlert, a0, a1, a2)
	if r.Count(mdebridge.VerdictDuplicate) != 3 || r.Events != 0 {
		t.Fatalf("re-read: %v", verdicts(r))
	}
	*now = now.Add(time.Minute)
	// A newer version: an update event naming what changed; the same
	// version twice in one page counts once; an older one is stale.
	b1 := version(a1, time.Minute, func(a *mdebridge.Alert) { a.Status, a.AssignedTo = "InProgress", "soc@contoso.com" })
	silent := version(a2, time.Minute) // only lastUpdateTime moved
	r = mustIngest(t, s, perAlert, b1, b1, a0, silent, version(a0, -time.Minute))
	want = []mdebridge.Verdict{"changed", "duplicate", "duplicate", "silent", "stale"}
	if diff := cmp.Diff(want, verdicts(r)); diff != "" || r.Events != 1 || r.LastSeq != 4 {
		t.Fatalf("versions (-want +got):\n%s%d events", diff, r.Events)
	}
	evs := events(t, s, 0)
	if len(evs) != 4 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs[:3] {
		b := body(t, e)
		if e.Seq != int64(i+1) || e.Kind != "create" || e.Origin != "mde" || b.Event.Action != mdebridge.ActionIncidentCreated ||
			b.Mdebridge.Incident.Version != 1 || b.Mdebridge.Alert["id"] != e.AlertID {
			t.Errorf("event %d: %+v %+v", i, e, b)
		}
	}
	up := body(t, evs[3])
	wantChanges := []mdebridge.FieldChange{{Field: "status", From: "New", To: "InProgress"}, {Field: "assignedTo", From: nil, To: "soc@contoso.com"}}
	if evs[3].AlertID != a1.ID || evs[3].Kind != "update" || up.Event.Action != mdebridge.ActionAlertUpdated ||
		!cmp.Equal(wantChanges, up.Mdebridge.Event.Changes) || up.Mdebridge.Incident.Status != "InProgress" || up.Mdebridge.Incident.Version != 2 {
		t.Errorf("update event: %+v %+v", evs[3], up)
	}
	incs, total, err := s.FindIncidents(t.Context(), mdebridge.IncidentFilter{})
	if err != nil || total != 3 || len(incs) != 3 {
		t.Fatalf("incidents: %d of %d, %v", len(incs), total, err)
	}
	if incs[0].AlertIDs[0] != a1.ID || incs[0].Status != "InProgress" {
		t.Errorf("the most recently changed incident first: %+v", incs[0])
	}
	st, err := s.GetAlert(t.Context(), a1.ID)
	if err != nil || st.Status != "InProgress" || string(st.Raw) != string(b1.Raw) || st.IncidentRef == 0 {
		t.Errorf("stored alert: %+v, %v", st, err)
	}
	if c, _ := s.Counts(t.Context()); c["alerts"] != 3 || c["incidents"] != 3 || c["incidents_open"] != 3 {
		t.Errorf("counts %v", c)
	}
}

func testIngestFilters(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	o := mdebridge.IngestOptions{GroupBy: mdebridge.GroupByAlert, Filters: mdebridge.IncidentFilters{Severities: []string{"high"}, Statuses: []string{"New"}}}
	low := Alert(0)  // Low
	high := Alert(2) // High
	resolved := Alert(6, func(a *mdebridge.Alert) { a.Status = "Resolved" })
	r := mustIngest(t, s, o, low, high, resolved)
	if diff := cmp.Diff([]mdebridge.Verdict{"filtered", "new", "filtered"}, verdicts(r)); diff != "" {
		t.Fatalf("verdicts (-want +got):\n%s", diff)
	}
	if _, err := s.GetAlert(t.Context(), low.ID); err != nil {
		t.Errorf("a filtered alert is still stored: %v", err)
	}
	// The low alert is raised to High: now it is an incident. The high one
	// is resolved: its incident follows, filter or not.
	r = mustIngest(t, s, o, version(low, time.Minute, func(a *mdebridge.Alert) { a.Severity = "High" }),
		version(high, time.Minute, func(a *mdebridge.Alert) { a.Status = "Resolved" }))
	if diff := cmp.Diff([]mdebridge.Verdict{"new", "changed"}, verdicts(r)); diff != "" {
		t.Fatalf("verdicts (-want +got):\n%s", diff)
	}
	evs := events(t, s, 0)
	if len(evs) != 3 || evs[1].Kind != "create" || evs[1].AlertID != low.ID || evs[2].Kind != "update" {
		t.Errorf("events %+v", evs)
	}
}

func testIngestGroups(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	o := mdebridge.IngestOptions{GroupBy: mdebridge.GroupByMDEIncident}
	same := func(a *mdebridge.Alert) { a.IncidentID = 777 }
	a, b := Alert(0, same), Alert(2, same) // Low, High
	loner := Alert(1, func(a *mdebridge.Alert) { a.IncidentID = 0 })
	r := mustIngest(t, s, o, a, b, loner)
	if r.Count(mdebridge.VerdictNew) != 3 || r.Events != 3 {
		t.Fatalf("%v", verdicts(r))
	}
	evs := events(t, s, 0)
	actions := []string{body(t, evs[0]).Event.Action, body(t, evs[1]).Event.Action, body(t, evs[2]).Event.Action}
	if diff := cmp.Diff([]string{mdebridge.ActionIncidentCreated, mdebridge.ActionAlertAdded, mdebridge.ActionIncidentCreated}, actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	incs, total, _ := s.FindIncidents(t.Context(), mdebridge.IncidentFilter{})
	if total != 2 {
		t.Fatalf("%d incidents", total)
	}
	var grouped mdebridge.Incident
	for _, inc := range incs {
		if inc.Key == "mde:777" {
			grouped = inc
		}
	}
	if grouped.Severity != "High" || grouped.Title != b.Title+" (+1 more alerts)" || len(grouped.AlertIDs) != 2 || grouped.MDEIncidentID != 777 {
		t.Errorf("grouped incident %+v", grouped)
	}
	// One of two alerts resolved: the incident is in progress; both: resolved.
	mustIngest(t, s, o, version(a, time.Minute, func(a *mdebridge.Alert) { a.Status = "Resolved" }))
	inc, _ := s.GetIncident(t.Context(), grouped.ID)
	if inc.Status != "InProgress" {
		t.Errorf("half resolved: %s", inc.Status)
	}
	mustIngest(t, s, o, version(b, time.Minute, func(a *mdebridge.Alert) { a.Status = "Resolved" }))
	if inc, _ = s.GetIncident(t.Context(), grouped.ID); inc.Status != "Resolved" || inc.Version != 4 {
		t.Errorf("all resolved: %s, version %d", inc.Status, inc.Version)
	}
}

func testIngestCheckpoint(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	if _, ok, err := s.PollCheckpoint(t.Context()); ok || err != nil {
		t.Fatalf("a fresh store has a checkpoint: %v %v", ok, err)
	}
	cp := mdebridge.PollCheckpoint{Watermark: t0.Add(3333300 * time.Nanosecond), Ties: 42, SweepFrom: t0.Add(-time.Hour)}
	o := perAlert
	o.Checkpoint = &cp
	mustIngest(t, s, o) // a poll that found nothing still moves on
	got, ok, err := s.PollCheckpoint(t.Context())
	if err != nil || !ok || !cmp.Equal(cp, got) {
		t.Errorf("checkpoint %+v %v %v, want %+v", got, ok, err, cp)
	}
}

func testChangeIncident(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	a := Alert(0)
	mustIngest(t, s, perAlert, a)
	incs, _, _ := s.FindIncidents(t.Context(), mdebridge.IncidentFilter{})
	id := incs[0].ID

	// Bad changes change nothing.
	for _, bad := range []mdebridge.AlertUpdate{{}, {Status: "Closed"}, {Determination: "Malware"}, {Classification: "FalsePositive", Determination: "Malware"}} {
		if _, err := s.ChangeIncident(t.Context(), id, mdebridge.IncidentChange{AlertUpdate: bad}, perAlert); !errors.Is(err, mdebridge.ErrInvalidUpdate) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := s.ChangeIncident(t.Context(), 9999, mdebridge.IncidentChange{AlertUpdate: mdebridge.AlertUpdate{Status: "New"}}, perAlert); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}
	*now = now.Add(time.Minute)
	u := mdebridge.AlertUpdate{Status: "Resolved", Classification: "TruePositive", Determination: "Malware", Comment: "contained"}
	res, err := s.ChangeIncident(t.Context(), id, mdebridge.IncidentChange{AlertUpdate: u, Author: "ana@contoso.com"}, perAlert)
	if err != nil {
		t.Fatal(err)
	}
	if res.Incident.Status != "Resolved" || res.Incident.Classification != "TruePositive" || len(res.Incident.Comments) != 1 ||
		res.Incident.Mirror == nil || res.Incident.Mirror.Pending != 1 || res.Mirror.ID == 0 || res.Event.Origin != "mdebridge" {
		t.Fatalf("change: %+v", res)
	}
	b := body(t, res.Event)
	if b.Event.Action != mdebridge.ActionIncidentUpdated || len(b.Mdebridge.Event.Changes) != 4 {
		t.Errorf("event %+v", b)
	}
	// While MDE has not taken the change, a poll that still shows the old
	// state does not undo it.
	stillNew := version(a, time.Second)
	r := mustIngest(t, s, perAlert, stillNew)
	if inc, _ := s.GetIncident(t.Context(), id); r.Verdicts[0] != mdebridge.VerdictSilent || inc.Status != "Resolved" {
		t.Errorf("a poll before MDE took the change: %v, status %s", r.Verdicts, inc.Status)
	}
	// MDE took it (the echo): nothing to report. Then a change made in MDE
	// flows back.
	if err := s.CompleteMirrorChange(t.Context(), res.Mirror.ID, mdebridge.MirrorOutcome{Done: true}); err != nil {
		t.Fatal(err)
	}
	echo := version(a, 2*time.Second, func(x *mdebridge.Alert) {
		x.ApplyUpdate(u, "mdebridge-app", *now)
	})
	r = mustIngest(t, s, perAlert, echo)
	if r.Verdicts[0] != mdebridge.VerdictSilent || r.Events != 0 {
		t.Errorf("the echo: %v", r.Verdicts)
	}
	reassigned := version(echo, time.Second, func(x *mdebridge.Alert) { x.AssignedTo = "tier2@contoso.com" })
	if r = mustIngest(t, s, perAlert, reassigned); r.Verdicts[0] != mdebridge.VerdictChanged {
		t.Errorf("a change made in MDE: %v", r.Verdicts)
	}
	// A change that changes nothing is not an event.
	n := len(events(t, s, 0))
	if _, err := s.ChangeIncident(t.Context(), id, mdebridge.IncidentChange{AlertUpdate: mdebridge.AlertUpdate{Status: "Resolved"}}, perAlert); err != nil {
		t.Fatal(err)
	}
	if got := len(events(t, s, 0)); got != n {
		t.Errorf("a no-op change made %d events", got-n)
	}
}

func testMirrorQueue(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	mustIngest(t, s, perAlert, Alert(0), Alert(1))
	incs, _, _ := s.FindIncidents(t.Context(), mdebridge.IncidentFilter{})
	var ids []int64
	for _, inc := range incs {
		res, err := s.ChangeIncident(t.Context(), inc.ID, mdebridge.IncidentChange{AlertUpdate: mdebridge.AlertUpdate{AssignedTo: "x@y.z"}}, perAlert)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Mirror.ID)
	}
	claimed, err := s.ClaimMirrorChanges(t.Context(), ids[0], *now, 10, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].ID != ids[0] || claimed[0].Attempts != 1 {
		t.Fatalf("claim one: %+v %v", claimed, err)
	}
	// A new change is its maker's for a grace period; a claimed change is
	// nobody else's until its claim runs out.
	if early, _ := s.ClaimMirrorChanges(t.Context(), 0, *now, 10, time.Minute); len(early) != 0 {
		t.Fatalf("claimed within the grace period: %+v", early)
	}
	*now = now.Add(mdebridge.MirrorGrace)
	if again, _ := s.ClaimMirrorChanges(t.Context(), 0, *now, 10, time.Minute); len(again) != 1 || again[0].ID != ids[1] {
		t.Fatalf("second claim: %+v", again)
	}
	*now = now.Add(2 * time.Minute)
	expired, _ := s.ClaimMirrorChanges(t.Context(), 0, *now, 10, time.Minute)
	if len(expired) != 2 {
		t.Fatalf("claims that ran out: %+v", expired)
	}
	s.CompleteMirrorChange(t.Context(), ids[0], mdebridge.MirrorOutcome{Done: true})
	s.CompleteMirrorChange(t.Context(), ids[1], mdebridge.MirrorOutcome{Error: "throttled", RetryAt: now.Add(time.Minute)})
	if due, _ := s.ClaimMirrorChanges(t.Context(), 0, *now, 10, time.Minute); len(due) != 0 {
		t.Errorf("claimed before its retry time: %+v", due)
	}
	*now = now.Add(2 * time.Minute)
	due, _ := s.ClaimMirrorChanges(t.Context(), 0, *now, 10, time.Minute)
	if len(due) != 1 || due[0].Attempts != 3 {
		t.Fatalf("retry: %+v", due)
	}
	s.CompleteMirrorChange(t.Context(), ids[1], mdebridge.MirrorOutcome{Error: "403 permission denied: needs Alert.ReadWrite.All"})
	inc, _ := s.GetIncident(t.Context(), due[0].IncidentID)
	if inc.Mirror == nil || inc.Mirror.Failed != 1 || inc.Mirror.LastError == "" {
		t.Errorf("failed change: %+v", inc.Mirror)
	}
}

func testEventsCursors(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	for i := range 5 {
		mustIngest(t, s, perAlert, Alert(i))
		*now = now.Add(time.Hour)
	}
	if n, _ := s.LastEventSeq(t.Context()); n != 5 {
		t.Fatalf("last seq %d", n)
	}
	if evs := events(t, s, 3); len(evs) != 2 || evs[0].Seq != 4 {
		t.Errorf("after 3: %+v", evs)
	}
	if c, err := s.SinkCursor(t.Context(), "siem"); c != 0 || err != nil {
		t.Errorf("new sink cursor %d %v", c, err)
	}
	s.SetSinkCursor(t.Context(), "siem", 4)
	s.SetSinkCursor(t.Context(), "siem", 2) // never back
	if c, _ := s.SinkCursor(t.Context(), "siem"); c != 4 {
		t.Errorf("cursor %d", c)
	}
	// Prune what is old and delivered; numbering goes on.
	n, err := s.PruneEvents(t.Context(), t0.Add(150*time.Minute), 2)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	mustIngest(t, s, perAlert, Alert(9))
	evs := events(t, s, 0)
	if len(evs) != 4 || evs[0].Seq != 3 || evs[3].Seq != 6 {
		t.Errorf("after pruning: %+v", evs)
	}
}

func testLeases(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	never := func(mdebridge.Lease) bool { return false }
	if err := s.AcquireLease(t.Context(), "incident-pipeline", "a:1", never); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireLease(t.Context(), "incident-pipeline", "a:1", never); err != nil {
		t.Errorf("the owner again: %v", err)
	}
	var held *mdebridge.LeaseHeldError
	if err := s.AcquireLease(t.Context(), "incident-pipeline", "b:2", never); !errors.As(err, &held) || held.Lease.Owner != "a:1" {
		t.Fatalf("another owner: %v", err)
	}
	*now = now.Add(time.Minute)
	old := func(l mdebridge.Lease) bool { return now.Sub(l.HeartbeatAt) > 30*time.Second }
	if err := s.AcquireLease(t.Context(), "incident-pipeline", "b:2", old); err != nil {
		t.Fatalf("take-over of a stale lease: %v", err)
	}
	if err := s.RenewLease(t.Context(), "incident-pipeline", "a:1"); err == nil {
		t.Error("the old owner renewed a lease it lost")
	}
	if err := s.RenewLease(t.Context(), "incident-pipeline", "b:2"); err != nil {
		t.Error(err)
	}
	s.ReleaseLease(t.Context(), "incident-pipeline", "b:2")
	if err := s.AcquireLease(t.Context(), "incident-pipeline", "c:3", never); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func testFindAlerts(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	var as []mdebridge.Alert
	for i := range 20 {
		as = append(as, Alert(i))
	}
	mustIngest(t, s, perAlert, as...)
	tests := []struct {
		f    mdebridge.AlertFilter
		want int
	}{
		{mdebridge.AlertFilter{}, 20},
		{mdebridge.AlertFilter{Severity: "high"}, 5},
		{mdebridge.AlertFilter{Entity: fmt.Sprintf("%040X", 0xabc000+3)}, 1},
		{mdebridge.AlertFilter{Entity: "185.220.101.4"}, 1},
		{mdebridge.AlertFilter{Entity: "JCHEN"}, 20},
		{mdebridge.AlertFilter{Machine: "host-0003"}, 3},
		{mdebridge.AlertFilter{Machine: fmt.Sprintf("%040x", 4)}, 3},
		{mdebridge.AlertFilter{DetectionSource: "windowsdefenderav", Category: "Malware"}, 4},
		{mdebridge.AlertFilter{UpdatedSince: as[15].LastUpdateTime}, 5},
		{mdebridge.AlertFilter{Limit: 4, Offset: 18}, 2},
	}
	for _, tt := range tests {
		got, total, err := s.FindAlerts(t.Context(), tt.f)
		if err != nil || len(got) != tt.want {
			t.Errorf("%+v: %d alerts (total %d), %v; want %d", tt.f, len(got), total, err, tt.want)
		}
	}
	got, _, _ := s.FindAlerts(t.Context(), mdebridge.AlertFilter{Limit: 1})
	if got[0].ID != as[19].ID || len(got[0].Evidence) != 2 || got[0].RelatedUser == nil {
		t.Errorf("newest first, decoded: %+v", got[0])
	}
	if _, err := s.GetAlert(t.Context(), "nope"); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
}
