package emulator_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge/emulator"
)

var alertNow = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// tenantAlerts writes the tenant to a file and reads its alerts back as
// JSON objects: the file holds them in the API's full shape.
func tenantAlerts(t *testing.T, tn *emulator.Tenant) []map[string]any {
	t.Helper()
	var f struct {
		Alerts []map[string]any `json:"alerts"`
	}
	if err := json.Unmarshal(writeTenant(t, tn), &f); err != nil {
		t.Fatal(err)
	}
	return f.Alerts
}

// liveAlerts are the alerts of the live captures, evidence included.
func liveAlerts(t *testing.T) []map[string]any {
	t.Helper()
	dir := filepath.Join("..", "testdata", "fixtures", "observed")
	var out []map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "get_alert.json"))
	if err != nil {
		t.Fatal(err)
	}
	var one map[string]any
	if err := json.Unmarshal(data, &one); err != nil {
		t.Fatal(err)
	}
	delete(one, "@odata.context")
	out = append(out, one)
	for _, f := range []string{"get_alerts.json", "get_machine_related_alerts.json"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var list struct{ Value []map[string]any }
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, list.Value...)
	}
	return out
}

// assertLiveShape holds objects to the live shape: every top-level key the
// live service sends is there, every value has a JSON type the live service
// has been seen to send (null only where it sent null), and what the live
// service sends with a value the emulator sends with a value at least once.
func assertLiveShape(t *testing.T, live []map[string]any, got []map[string]any) {
	t.Helper()
	want := shape{}
	for _, o := range live {
		want.learn("", o)
	}
	have := shape{}
	for _, o := range got {
		have.learn("", o)
		for path := range want {
			if !strings.ContainsAny(path, ".[") {
				if _, ok := o[path]; !ok {
					t.Fatalf("%v lacks key %q", o["id"], path)
				}
			}
		}
	}
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, path := range paths {
		seen := want[path]
		for typ := range have[path] {
			if !seen[typ] && !(typ != "null" && onlyNull(seen)) {
				t.Errorf("%s: the emulator sends %s; the live service sends %v", path, typ, keys(seen))
			}
		}
		for typ := range seen {
			if typ != "null" && !have[path][typ] {
				t.Errorf("%s: the live service sends %s, the emulator never does (it sends %v)", path, typ, keys(have[path]))
			}
		}
	}
}

func TestGeneratedAlertsMatchLiveShape(t *testing.T) {
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 3, Machines: 400, Alerts: 1500, Now: alertNow})
	got := tenantAlerts(t, tn)
	if len(got) != 1500 {
		t.Fatalf("%d alerts in the file, want 1500", len(got))
	}
	assertLiveShape(t, liveAlerts(t), got)
}

func TestGeneratedAlertsAreRealistic(t *testing.T) {
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 5, Machines: 500, Alerts: 2000, Now: alertNow})
	machines := map[string]bool{}
	var ms struct {
		Machines []struct{ ID string } `json:"machines"`
	}
	json.Unmarshal(writeTenant(t, tn), &ms)
	for _, m := range ms.Machines {
		machines[m.ID] = true
	}
	count := func() map[string]map[string]int { return map[string]map[string]int{} }
	seen := count()
	add := func(k, v string) {
		if seen[k] == nil {
			seen[k] = map[string]int{}
		}
		seen[k][v]++
	}
	sevenDigits := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$`)
	ids := map[string]bool{}
	unknownMachines := 0
	evidenceKeys := []string{"entityType", "evidenceCreationTime", "sha1", "sha256", "fileName", "filePath", "processId", "processCommandLine",
		"processCreationTime", "parentProcessId", "parentProcessCreationTime", "parentProcessFileName", "parentProcessFilePath", "ipAddress", "url",
		"registryKey", "registryHive", "registryValueType", "registryValue", "registryValueName", "accountName", "domainName", "userSid",
		"aadUserId", "userPrincipalName", "detectionStatus"}
	for _, a := range tenantAlerts(t, tn) {
		id := a["id"].(string)
		if ids[id] {
			t.Errorf("duplicate id %s", id)
		}
		ids[id] = true
		for _, k := range []string{"category", "detectionSource", "severity", "status", "investigationState"} {
			add(k, a[k].(string))
		}
		if !machines[a["machineId"].(string)] {
			unknownMachines++
		}
		created, _ := time.Parse(time.RFC3339Nano, a["alertCreationTime"].(string))
		updated, _ := time.Parse(time.RFC3339Nano, a["lastUpdateTime"].(string))
		if !sevenDigits.MatchString(a["lastUpdateTime"].(string)) || updated.Before(created) || updated.After(alertNow) {
			t.Errorf("%s: lastUpdateTime %v, created %v", id, a["lastUpdateTime"], a["alertCreationTime"])
		}
		if (a["status"] == "Resolved") != (a["resolvedTime"] != nil) {
			t.Errorf("%s: status %v with resolvedTime %v", id, a["status"], a["resolvedTime"])
		}
		add("has", "mitre="+itoa(min(1, len(a["mitreTechniques"].([]any)))))
		add("has", "comments="+itoa(min(1, len(a["comments"].([]any)))))
		add("has", "relatedUser="+itoa(map[bool]int{true: 1}[a["relatedUser"] != nil]))
		add("has", "investigationId="+itoa(map[bool]int{true: 1}[a["investigationId"] != nil]))
		add("has", "classification="+itoa(map[bool]int{true: 1}[a["classification"] != nil]))
		add("has", "threatFamilyName="+itoa(map[bool]int{true: 1}[a["threatFamilyName"] != nil]))
		for _, e := range a["evidence"].([]any) {
			ev := e.(map[string]any)
			add("entityType", ev["entityType"].(string))
			for _, k := range evidenceKeys {
				if _, ok := ev[k]; !ok {
					t.Fatalf("%s: evidence lacks key %q: %v", id, k, ev)
				}
			}
			if len(ev) != len(evidenceKeys) {
				t.Fatalf("%s: evidence has %d keys, want %d", id, len(ev), len(evidenceKeys))
			}
		}
	}
	for k, atLeast := range map[string]int{"category": 10, "detectionSource": 6, "severity": 4, "status": 3, "investigationState": 8} {
		if len(seen[k]) < atLeast {
			t.Errorf("%s: only %v", k, seen[k])
		}
	}
	for _, typ := range []string{"File", "Process", "User", "Ip", "Url", "Registry"} {
		if seen["entityType"][typ] == 0 {
			t.Errorf("no %s evidence: %v", typ, seen["entityType"])
		}
	}
	for _, h := range []string{"mitre", "comments", "relatedUser", "investigationId", "classification", "threatFamilyName"} {
		if seen["has"][h+"=0"] == 0 || seen["has"][h+"=1"] == 0 {
			t.Errorf("%s: always or never set: %v", h, seen["has"])
		}
	}
	// Older alerts are mostly triaged; every status is there.
	if seen["status"]["Resolved"] < 600 || seen["status"]["New"] < 100 {
		t.Errorf("statuses %v", seen["status"])
	}
	if unknownMachines == 0 || unknownMachines > 60 {
		t.Errorf("%d alerts on machines the tenant does not know", unknownMachines)
	}
}

func TestGeneratedAlertsAreDeterministic(t *testing.T) {
	gen := func() []byte {
		return writeTenant(t, emulator.Generate(emulator.GenerateOptions{Seed: 11, Machines: 50, Alerts: 300, Now: alertNow}))
	}
	a, b := gen(), gen()
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed and time gave different tenants")
	}
	// Machines do not depend on how many alerts there are.
	var with, without struct {
		Machines json.RawMessage `json:"machines"`
	}
	json.Unmarshal(a, &with)
	json.Unmarshal(writeTenant(t, emulator.Generate(emulator.GenerateOptions{Seed: 11, Machines: 50, Now: alertNow})), &without)
	if !bytes.Equal(with.Machines, without.Machines) {
		t.Error("adding alerts changed the machines")
	}
}

func TestTenantFileKeepsAlerts(t *testing.T) {
	// Live alerts, with a field the emulator does not model.
	var live []map[string]any
	for _, a := range liveAlerts(t) {
		if !slices.ContainsFunc(live, func(l map[string]any) bool { return l["id"] == a["id"] }) {
			live = append(live, a)
		}
	}
	live[0]["futureField"] = map[string]any{"x": 1.0}
	raw, _ := json.Marshal(map[string]any{"tenantId": "f5d73c4c-bb3d-421b-8bee-424916a4acca", "machines": []any{}, "alerts": live[:3]})
	path := filepath.Join(t.TempDir(), "t.json")
	os.WriteFile(path, raw, 0o600)
	tn, err := emulator.LoadTenantFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tn.AlertCount() != 3 {
		t.Fatalf("%d alerts loaded", tn.AlertCount())
	}
	got := tenantAlerts(t, tn)
	if diff := cmp.Diff(live[:3], got); diff != "" {
		t.Errorf("alerts did not round-trip (-live +served):\n%s", diff)
	}

	dup, _ := json.Marshal(map[string]any{"machines": []any{}, "alerts": []any{live[0], live[0]}})
	os.WriteFile(path, dup, 0o600)
	if _, err := emulator.LoadTenantFile(path); err == nil || !strings.Contains(err.Error(), "duplicate id") {
		t.Errorf("duplicate alert ids: %v", err)
	}
	os.WriteFile(path, []byte(`{"machines":[],"alerts":[{"title":"no id"}]}`), 0o600)
	if _, err := emulator.LoadTenantFile(path); err == nil || !strings.Contains(err.Error(), "alert 0") {
		t.Errorf("alert without id: %v", err)
	}
}

func TestAlertsMentioning(t *testing.T) {
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 9, Machines: 200, Alerts: 800, Now: alertNow})
	all := tenantAlerts(t, tn)
	// What each query should find, computed from the served JSON.
	want := map[emulator.EntityKind]map[string][]string{}
	note := func(kind emulator.EntityKind, v any, id string) {
		s, ok := v.(string)
		if !ok || s == "" {
			return
		}
		s = strings.ToLower(s)
		if want[kind] == nil {
			want[kind] = map[string][]string{}
		}
		if l := want[kind][s]; len(l) == 0 || l[len(l)-1] != id {
			want[kind][s] = append(l, id)
		}
	}
	for _, a := range all {
		id := a["id"].(string)
		note(emulator.EntityMachine, a["machineId"], id)
		for _, e := range a["evidence"].([]any) {
			ev := e.(map[string]any)
			note(emulator.EntityFile, ev["sha1"], id)
			note(emulator.EntityIP, ev["ipAddress"], id)
			note(emulator.EntityUser, ev["accountName"], id)
		}
	}
	for kind, values := range want {
		n := 0
		for v, ids := range values {
			if n++; n > 25 {
				break
			}
			got := tn.AlertsMentioning(kind, strings.ToUpper(v))
			for _, id := range ids {
				if !slices.Contains(got, id) {
					t.Errorf("AlertsMentioning(%s, %s) = %v lacks %s", kind, v, got, id)
				}
			}
		}
	}
	// A domain is found through URL evidence, bare host or full URL.
	found := false
	for _, a := range all {
		for _, e := range a["evidence"].([]any) {
			u, _ := e.(map[string]any)["url"].(string)
			if strings.HasPrefix(u, "https://") {
				host := strings.SplitN(strings.TrimPrefix(u, "https://"), "/", 2)[0]
				if !slices.Contains(tn.AlertsMentioning(emulator.EntityDomain, host), a["id"].(string)) {
					t.Errorf("domain %s does not find %s", host, a["id"])
				}
				found = true
			}
		}
	}
	if !found {
		t.Error("no URL evidence generated")
	}
	if got := tn.AlertsMentioning(emulator.EntityFile, strings.Repeat("0", 40)); len(got) != 0 {
		t.Errorf("an unknown hash found %v", got)
	}
	if got := tn.AlertsMentioning(emulator.EntityUser, ""); len(got) != 0 {
		t.Errorf("an empty user found %d alerts", len(got))
	}
}

func TestAddAndChangeAlertStamps(t *testing.T) {
	clk := newClock()
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 2, Machines: 20, Now: clk.Now()})
	if _, err := emulator.New(emulator.Options{Tenant: tn, Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	burst, err := tn.AddAlerts(emulator.AlertSpec{Count: 50, SharedTimestamp: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range burst {
		if !s.LastUpdateTime.Equal(burst[0].LastUpdateTime) {
			t.Fatalf("a shared burst has stamps %v and %v", burst[0].LastUpdateTime, s.LastUpdateTime)
		}
	}
	// One by one, at the same instant: each its own stamp, strictly later,
	// 1/300 s apart as the service's datetime column counts.
	each, err := tn.AddAlerts(emulator.AlertSpec{Count: 5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	prev := burst[0].LastUpdateTime
	for _, s := range each {
		if d := s.LastUpdateTime.Sub(prev); d < 3333300*time.Nanosecond || d > 3333400*time.Nanosecond {
			t.Errorf("stamp %v is %v after the last", s.LastUpdateTime, d)
		}
		prev = s.LastUpdateTime
	}
	// A clock that goes back does not make stamps go back.
	clk.Advance(-time.Minute)
	back, err := tn.AddAlerts(emulator.AlertSpec{Count: 1, Seed: 5})
	if err != nil || !back[0].LastUpdateTime.After(prev) {
		t.Fatalf("stamp after the clock went back: %v, %v (last %v)", back, err, prev)
	}
	clk.Advance(time.Minute)
	changed, err := tn.ChangeAlerts(emulator.AlertChange{IDs: []string{burst[3].ID, burst[7].ID}, Status: "Resolved", Classification: "TruePositive", SharedTimestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	if !changed[0].LastUpdateTime.After(back[0].LastUpdateTime) || !changed[1].LastUpdateTime.Equal(changed[0].LastUpdateTime) {
		t.Errorf("change stamps %v after %v", changed, back[0].LastUpdateTime)
	}
	prev = changed[0].LastUpdateTime

	// Late: an old stamp, visible now; delayed: not visible yet.
	late, err := tn.AddAlerts(emulator.AlertSpec{Count: 1, LastUpdateTime: clk.Now().Add(-10 * time.Minute), Seed: 3})
	if err != nil || !late[0].LastUpdateTime.Before(prev) {
		t.Fatalf("late alert: %v, %v", late, err)
	}
	m := emulator.EntityMachine
	delayed, err := tn.AddAlerts(emulator.AlertSpec{Count: 1, VisibleAfter: 90 * time.Second, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	machineOf := func(id string) string {
		for _, a := range tenantAlerts(t, tn) {
			if a["id"] == id {
				return a["machineId"].(string)
			}
		}
		t.Fatalf("no alert %s", id)
		return ""
	}
	mid := machineOf(delayed[0].ID)
	if slices.Contains(tn.AlertsMentioning(m, mid), delayed[0].ID) {
		t.Error("an alert is visible before its time")
	}
	clk.Advance(91 * time.Second)
	if !slices.Contains(tn.AlertsMentioning(m, mid), delayed[0].ID) {
		t.Error("an alert is still invisible after its time")
	}

	for _, bad := range []emulator.AlertSpec{{Count: 0}, {Count: 1, VisibleAfter: -time.Second}, {Count: 1, MachineID: "nope"}} {
		if _, err := tn.AddAlerts(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := tn.ChangeAlerts(emulator.AlertChange{IDs: []string{"nope"}}); err == nil {
		t.Error("changing an unknown alert succeeded")
	}
	if _, err := tn.ChangeAlerts(emulator.AlertChange{Count: 1, Status: "Closed"}); err == nil {
		t.Error("an unknown status was accepted")
	}
}
