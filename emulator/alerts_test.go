package emulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

type alertJSON struct {
	ID             string           `json:"id"`
	Status         string           `json:"status"`
	Severity       string           `json:"severity"`
	Category       string           `json:"category"`
	AssignedTo     *string          `json:"assignedTo"`
	Classification *string          `json:"classification"`
	Determination  *string          `json:"determination"`
	LastUpdateTime string           `json:"lastUpdateTime"`
	ResolvedTime   *string          `json:"resolvedTime"`
	MachineID      string           `json:"machineId"`
	RelatedUser    *json.RawMessage `json:"relatedUser"`
	Comments       []struct {
		Comment   string `json:"comment"`
		CreatedBy string `json:"createdBy"`
	} `json:"comments"`
	Evidence []map[string]any `json:"evidence"`
}

type alertPage struct {
	Context  string      `json:"@odata.context"`
	Count    *int        `json:"@odata.count"`
	NextLink string      `json:"@odata.nextLink"`
	Value    []alertJSON `json:"value"`
}

func getAlerts(t *testing.T, emu *emulatortest.Emu, query, tok string) alertPage {
	t.Helper()
	resp, body := emu.Get(t, "/api/alerts?"+query, tok)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/alerts?%s: %d %s", query, resp.StatusCode, body)
	}
	var p alertPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// parseTime reads a timestamp of the API. Timestamps have 0 to 7
// fractional digits, so they must never be compared as strings.
func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return ts
}

func getAlert(t *testing.T, emu *emulatortest.Emu, id, tok string) (int, alertJSON, []byte) {
	t.Helper()
	resp, body := emu.Get(t, "/api/alerts/"+url.PathEscape(id), tok)
	var a alertJSON
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, a, body
}

func TestAlertListShapeMatchesLive(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300), emulatortest.WithAlerts(800))
	resp, body := emu.Get(t, "/api/alerts?$expand=evidence", emu.AppToken(t))
	if resp.StatusCode != 200 || resp.Header.Get("OData-Version") != "4.0" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	var list struct{ Value []map[string]any }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 800 {
		t.Fatalf("%d alerts", len(list.Value))
	}
	assertLiveShape(t, liveAlerts(t), list.Value)
}

func TestAlertListQueries(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(100), emulatortest.WithAlerts(600), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.AppToken(t)

	// Without $expand the evidence is [], with it the evidence is there.
	plain := getAlerts(t, emu, "$top=50", tok)
	if len(plain.Value) != 50 || plain.NextLink != "" {
		t.Fatalf("$top=50: %d alerts, nextLink %q", len(plain.Value), plain.NextLink)
	}
	for _, a := range plain.Value {
		if a.Evidence == nil || len(a.Evidence) != 0 {
			t.Fatalf("%s: evidence %v without $expand", a.ID, a.Evidence)
		}
	}
	expanded := getAlerts(t, emu, "$top=50&$expand=evidence", tok)
	withEvidence := 0
	for _, a := range expanded.Value {
		if len(a.Evidence) > 0 {
			withEvidence++
		}
	}
	if withEvidence < 45 {
		t.Errorf("only %d of 50 alerts have evidence with $expand=evidence", withEvidence)
	}

	// The poller's query: changed since T, oldest first, paged with $skip.
	all := getAlerts(t, emu, "$orderby=lastUpdateTime+asc", tok).Value
	since := all[300].LastUpdateTime
	sinceT := parseTime(t, since)
	var got []alertJSON
	for skip := 0; ; skip += 100 {
		p := getAlerts(t, emu, "$filter=lastUpdateTime+ge+"+url.QueryEscape(since)+"&$orderby=lastUpdateTime+asc&$top=100&$skip="+itoa(skip), tok)
		got = append(got, p.Value...)
		if len(p.Value) < 100 {
			break
		}
	}
	want := 0
	for _, a := range all {
		if !parseTime(t, a.LastUpdateTime).Before(sinceT) {
			want++
		}
	}
	if len(got) != want || want < 290 {
		t.Fatalf("lastUpdateTime ge %s: %d alerts, want %d", since, len(got), want)
	}
	if !slices.IsSortedFunc(got, func(a, b alertJSON) int {
		return parseTime(t, a.LastUpdateTime).Compare(parseTime(t, b.LastUpdateTime))
	}) {
		t.Error("not in lastUpdateTime order")
	}

	// Documented filters, $count, $select.
	p := getAlerts(t, emu, "$filter=status+eq+'New'+and+severity+ne+'Informational'&$count=true", tok)
	if p.Count == nil || *p.Count != len(p.Value) || len(p.Value) == 0 {
		t.Fatalf("count %v for %d alerts", p.Count, len(p.Value))
	}
	for _, a := range p.Value {
		if a.Status != "New" || a.Severity == "Informational" {
			t.Errorf("%s: %s %s", a.ID, a.Status, a.Severity)
		}
	}
	resp, body := emu.Get(t, "/api/alerts?$select=id,status&$top=2", tok)
	var sel struct {
		Context string           `json:"@odata.context"`
		Value   []map[string]any `json:"value"`
	}
	json.Unmarshal(body, &sel)
	if resp.StatusCode != 200 || len(sel.Value) != 2 || len(sel.Value[0]) != 2 || !strings.HasSuffix(sel.Context, "#Alerts(id,status)") {
		t.Errorf("$select: %d %s", resp.StatusCode, body)
	}

	for _, bad := range []string{"$expand=machine", "$filter=machineId+eq+'x'", "$top=10001", "$filter=lastUpdateTime+ge+yesterday", "$orderby=evidence"} {
		resp, body := emu.Get(t, "/api/alerts?"+bad, tok)
		if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != "ODataError" {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
}

func TestAlertListPagesWithNextLink(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	emu.AddAlerts(t, emulator.AlertSpec{Count: 12000, SharedTimestamp: true})
	tok := emu.AppToken(t)
	next := "/api/alerts?$select=id"
	seen := map[string]bool{}
	pages := 0
	for next != "" {
		resp, body := emu.Get(t, next, tok)
		var p struct {
			NextLink string `json:"@odata.nextLink"`
			Value    []struct{ ID string }
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
			t.Fatalf("%s: %d", next, resp.StatusCode)
		}
		for _, a := range p.Value {
			seen[a.ID] = true
		}
		next = p.NextLink
		pages++
	}
	if pages != 2 || len(seen) != 12000 {
		t.Errorf("%d pages, %d alerts", pages, len(seen))
	}
}

func TestGetAlertAndLateVisibility(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20), emulatortest.WithAlerts(5))
	tok := emu.AppToken(t)
	id := getAlerts(t, emu, "$top=1", tok).Value[0].ID
	status, a, body := getAlert(t, emu, strings.ToUpper(id), tok)
	if status != 200 || a.ID != id || len(a.Evidence) == 0 || !strings.Contains(string(body), `#Alerts/$entity"`) {
		t.Fatalf("GET alert: %d %s", status, body)
	}
	status, _, body = getAlert(t, emu, "da000_1", tok)
	if e := decodeErr(t, body); status != 404 || e.Error.Code != "ResourceNotFound" || e.Error.Message != "Alert da000_1 was not found" {
		t.Errorf("unknown alert: %d %s", status, body)
	}
	// An alert the service has not indexed yet is nowhere to be seen.
	late := emu.AddAlerts(t, emulator.AlertSpec{Count: 1, VisibleAfter: time.Hour})
	if status, _, _ := getAlert(t, emu, late[0].ID, tok); status != 404 {
		t.Errorf("an alert not yet visible: %d", status)
	}
	if n := len(getAlerts(t, emu, "", tok).Value); n != 5 {
		t.Errorf("the list shows %d alerts, want the 5 visible ones", n)
	}
}

func TestUpdateAlert(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	st := emu.AddAlerts(t, emulator.AlertSpec{Count: 3})
	tok := emu.AppToken(t)
	id := st[0].ID
	resp, body := emu.Do(t, "PATCH", "/api/alerts/"+id, tok,
		`{"status":"Resolved","assignedTo":"secop2@contoso.com","classification":"FalsePositive","determination":"NotMalicious","comment":"Resolve my alert"}`)
	var a alertJSON
	if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	if a.Status != "Resolved" || a.ResolvedTime == nil || *a.AssignedTo != "secop2@contoso.com" || *a.Classification != "FalsePositive" ||
		*a.Determination != "NotMalicious" || len(a.Comments) != 1 || a.Comments[0].CreatedBy != "emulatortest" || len(a.Evidence) == 0 {
		t.Errorf("updated alert: %s", body)
	}
	if !parseTime(t, a.LastUpdateTime).After(st[2].LastUpdateTime) {
		t.Errorf("lastUpdateTime %s did not move past %v", a.LastUpdateTime, st[2].LastUpdateTime)
	}
	// Reopening clears resolvedTime; the determination must fit the
	// classification.
	resp, body = emu.Do(t, "PATCH", "/api/alerts/"+id, tok, `{"status":"InProgress"}`)
	json.Unmarshal(body, &a)
	if resp.StatusCode != 200 || a.ResolvedTime != nil {
		t.Errorf("reopen: %d %s", resp.StatusCode, body)
	}
	tests := []struct {
		body string
		code string
	}{
		{`{"status":"Closed"}`, "InvalidInput"},
		{`{"classification":"Maybe"}`, "InvalidInput"},
		{`{"determination":"Malware"}`, "InvalidInput"}, // a FalsePositive alert
		{`{"Status":"Resolved"}`, "InvalidRequestBody"}, // body parameters are case-sensitive
		{`{}`, "InvalidRequestBody"},
		{`{"status":5}`, "InvalidRequestBody"},
		{`not json`, "InvalidRequestBody"},
	}
	for _, tt := range tests {
		resp, body := emu.Do(t, "PATCH", "/api/alerts/"+id, tok, tt.body)
		if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != tt.code {
			t.Errorf("%s: %d %s, want 400 %s", tt.body, resp.StatusCode, body, tt.code)
		}
	}
	if resp, _ := emu.Do(t, "PATCH", "/api/alerts/nope", tok, `{"status":"New"}`); resp.StatusCode != 404 {
		t.Errorf("unknown alert: %d", resp.StatusCode)
	}
	readOnly := emu.Token(t, "Alert.Read.All")
	resp, body = emu.Do(t, "PATCH", "/api/alerts/"+id, readOnly, `{"status":"New"}`)
	if e := decodeErr(t, body); resp.StatusCode != 403 || !strings.Contains(e.Error.Message, "Alert.ReadWrite.All") {
		t.Errorf("read-only app: %d %s", resp.StatusCode, body)
	}
}

func TestBatchUpdateAlerts(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	st := emu.AddAlerts(t, emulator.AlertSpec{Count: 4})
	tok := emu.AppToken(t)
	ids, _ := json.Marshal([]string{st[0].ID, st[1].ID, st[2].ID})
	resp, body := emu.Do(t, "POST", "/api/alerts/batchUpdate", tok, `{"alertIds":`+string(ids)+`,"status":"Resolved","classification":"TruePositive","determination":"Malware","comment":"batch"}`)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("batchUpdate: %d %q", resp.StatusCode, body)
	}
	var stamps []string
	for _, s := range st[:3] {
		_, a, _ := getAlert(t, emu, s.ID, tok)
		if a.Status != "Resolved" || *a.Determination != "Malware" || len(a.Comments) != 1 {
			t.Errorf("%s after batchUpdate: %+v", s.ID, a)
		}
		stamps = append(stamps, a.LastUpdateTime)
	}
	if stamps[0] != stamps[1] || stamps[1] != stamps[2] {
		t.Errorf("one batch, several stamps: %v", stamps)
	}
	// A batch with an unknown id changes nothing.
	resp, body = emu.Do(t, "POST", "/api/alerts/batchUpdate", tok, `{"alertIds":["`+st[3].ID+`","nope"],"status":"Resolved"}`)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "nope") {
		t.Errorf("unknown id: %d %s", resp.StatusCode, body)
	}
	if _, a, _ := getAlert(t, emu, st[3].ID, tok); a.Status != "New" {
		t.Errorf("a refused batch changed %s", a.ID)
	}
	for _, bad := range []string{`{"status":"Resolved"}`, `{"alertIds":[],"status":"Resolved"}`, `{"alertIds":["` + st[3].ID + `"]}`} {
		if resp, body := emu.Do(t, "POST", "/api/alerts/batchUpdate", tok, bad); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	// 10 calls a minute: the eleventh is throttled with the live message.
	emu.ResetRateLimits()
	one := `{"alertIds":["` + st[3].ID + `"],"assignedTo":"a@b.c"}`
	for i := range 10 {
		if resp, body := emu.Do(t, "POST", "/api/alerts/batchUpdate", tok, one); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body = emu.Do(t, "POST", "/api/alerts/batchUpdate", tok, one)
	if e := decodeErr(t, body); resp.StatusCode != 429 || e.Error.Message != "API calls quota exceeded! maximum allowed 10 per 00:01:00" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("11th batchUpdate: %d %s", resp.StatusCode, body)
	}
}

func TestCreateAlertByReference(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	tok := emu.AppToken(t)
	var m struct{ Value []struct{ ID string } }
	_, body := emu.Get(t, "/api/machines?$top=1", tok)
	json.Unmarshal(body, &m)
	req, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "docs", "requests", "alert-createbyreference.request.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(req), "1e5bc9d7e413ddd7902c2932e418702b84d0cc07", m.Value[0].ID, 1)
	resp, body := emu.Do(t, "POST", "/api/alerts/CreateAlertByReference", tok, doc)
	var first alertJSON
	if resp.StatusCode != 200 || json.Unmarshal(body, &first) != nil || first.MachineID != m.Value[0].ID || first.Category != "Exploit" || first.Status != "New" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	// The same title on the same device while open: the same alert, updated.
	resp, body = emu.Do(t, "POST", "/api/alerts/CreateAlertByReference", tok, doc)
	var second alertJSON
	json.Unmarshal(body, &second)
	if resp.StatusCode != 200 || second.ID != first.ID || !parseTime(t, second.LastUpdateTime).After(parseTime(t, first.LastUpdateTime)) {
		t.Errorf("second call: %d %s", resp.StatusCode, body)
	}
	for _, tt := range []struct{ body, code string }{
		{strings.Replace(doc, `"category": "Exploit"`, `"category": "Bogus"`, 1), "InvalidInput"},
		{strings.Replace(doc, `"severity": "Low"`, `"severity": "Informational"`, 1), "InvalidInput"},
		{strings.Replace(doc, `"reportId": "20776",`, ``, 1), "MissingRequiredParameter"},
	} {
		if resp, body := emu.Do(t, "POST", "/api/alerts/CreateAlertByReference", tok, tt.body); resp.StatusCode != 400 || decodeErr(t, body).Error.Code != tt.code {
			t.Errorf("want 400 %s: %d %s", tt.code, resp.StatusCode, body)
		}
	}
	unknown := strings.Replace(doc, m.Value[0].ID, strings.Repeat("ab", 20), 1)
	if resp, _ := emu.Do(t, "POST", "/api/alerts/CreateAlertByReference", tok, unknown); resp.StatusCode != 404 {
		t.Errorf("unknown machine: %d", resp.StatusCode)
	}
}

func TestMachineAlertsAndCount(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	tok := emu.AppToken(t)
	var m struct {
		Value []struct{ ID, ComputerDNSName string }
	}
	_, body := emu.Get(t, "/api/machines?$top=1", tok)
	json.Unmarshal(body, &m)
	mid := m.Value[0].ID
	emu.AddAlerts(t, emulator.AlertSpec{Count: 4, MachineID: mid})
	emu.AddAlerts(t, emulator.AlertSpec{Count: 3})
	st := emu.AddAlerts(t, emulator.AlertSpec{Count: 1, MachineID: mid})
	emu.ChangeAlerts(t, emulator.AlertChange{IDs: []string{st[0].ID}, Status: "Resolved"})

	resp, body := emu.Get(t, "/api/machines/"+mid+"/alerts", tok)
	var p alertPage
	json.Unmarshal(body, &p)
	if resp.StatusCode != 200 || len(p.Value) < 5 {
		t.Fatalf("machine alerts: %d %d", resp.StatusCode, len(p.Value))
	}
	for _, a := range p.Value {
		if a.MachineID != mid || len(a.Evidence) == 0 {
			t.Errorf("%s: machine %s, %d evidence", a.ID, a.MachineID, len(a.Evidence))
		}
	}
	total := len(p.Value)
	resp, body = emu.Get(t, "/api/machines/"+mid+"/alerts/$count", tok)
	if resp.StatusCode != 200 || string(body) != itoa(total) {
		t.Errorf("$count: %d %q, want %d", resp.StatusCode, body, total)
	}
	resp, body = emu.Get(t, "/api/machines/"+mid+"/alerts/$count?$filter=status+ne+'Resolved'", tok)
	if resp.StatusCode != 200 || string(body) != itoa(total-1) {
		t.Errorf("$count with filter: %d %q, want %d", resp.StatusCode, body, total-1)
	}
	if resp, _ := emu.Get(t, "/api/machines/nope/alerts", tok); resp.StatusCode != 404 {
		t.Errorf("unknown machine: %d", resp.StatusCode)
	}
}

func TestAlertRelatedEntities(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(50), emulatortest.WithAlerts(400))
	tok := emu.AppToken(t)
	all := getAlerts(t, emu, "$expand=evidence", tok).Value
	var withURL, withFile, noUser, withUser *alertJSON
	for i := range all {
		a := &all[i]
		for _, e := range a.Evidence {
			if u, _ := e["url"].(string); strings.HasPrefix(u, "https://") && withURL == nil {
				withURL = a
			}
			if e["entityType"] == "File" && withFile == nil {
				withFile = a
			}
		}
		if a.RelatedUser == nil && noUser == nil {
			noUser = a
		}
		if a.RelatedUser != nil && withUser == nil {
			withUser = a
		}
	}
	if withURL == nil || withFile == nil || noUser == nil || withUser == nil {
		t.Fatal("the generated alerts lack an example")
	}
	var domains struct {
		Context string `json:"@odata.context"`
		Value   []struct{ Host string }
	}
	_, body := emu.Get(t, "/api/alerts/"+withURL.ID+"/domains", tok)
	json.Unmarshal(body, &domains)
	if len(domains.Value) == 0 || !strings.HasSuffix(domains.Context, "/$metadata#Domains") {
		t.Errorf("domains: %s", body)
	}
	for _, d := range domains.Value {
		if !slices.Contains(emu.Tenant().AlertsMentioning(emulator.EntityDomain, d.Host), withURL.ID) {
			t.Errorf("domain %s of %s is not found by AlertsMentioning", d.Host, withURL.ID)
		}
	}
	// Files: the docs' File shape.
	var docFiles, files struct{ Value []map[string]any }
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "docs", "alert-files.json"))
	json.Unmarshal(data, &docFiles)
	_, body = emu.Get(t, "/api/alerts/"+withFile.ID+"/files", tok)
	json.Unmarshal(body, &files)
	if len(files.Value) == 0 {
		t.Fatalf("files: %s", body)
	}
	for k := range docFiles.Value[0] {
		if _, ok := files.Value[0][k]; !ok {
			t.Errorf("file lacks %q: %v", k, files.Value[0])
		}
	}
	var ips struct{ Value []struct{ ID string } }
	resp, body := emu.Get(t, "/api/alerts/"+withFile.ID+"/ips", tok)
	if resp.StatusCode != 200 || json.Unmarshal(body, &ips) != nil {
		t.Errorf("ips: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/alerts/"+withUser.ID+"/user", tok)
	var user map[string]any
	json.Unmarshal(body, &user)
	if resp.StatusCode != 200 || user["accountName"] == nil || !strings.Contains(user["id"].(string), `\`) {
		t.Errorf("user: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/alerts/"+noUser.ID+"/user", tok)
	if e := decodeErr(t, body); resp.StatusCode != 404 || e.Error.Message != "There is no User related to alert "+noUser.ID {
		t.Errorf("no user: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/alerts/"+withFile.ID+"/machine", tok)
	if resp.StatusCode != 200 && resp.StatusCode != 404 || !strings.Contains(string(body), withFile.MachineID) {
		t.Errorf("machine: %d %s", resp.StatusCode, body)
	}
	// Each related route needs its own permission.
	alertsOnly := emu.Token(t, "Alert.Read.All")
	for _, r := range []string{"domains", "files", "ips", "machine", "user"} {
		if resp, _ := emu.Get(t, "/api/alerts/"+withFile.ID+"/"+r, alertsOnly); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with Alert.Read.All only: %d", r, resp.StatusCode)
		}
	}
}

func TestAlertControlAPI(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	resp, body := emu.Do(t, "POST", "/_emulator/alerts", "", `{"count":3000,"sharedTimestamp":true,"creationTime":"2026-01-01T00:00:00Z"}`)
	var added struct {
		IDs    []string
		Alerts []emulator.AlertStamp
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &added) != nil || len(added.IDs) != 3000 || len(added.Alerts) != 3000 {
		t.Fatalf("POST alerts: %d %.300s", resp.StatusCode, body)
	}
	for _, a := range added.Alerts {
		if !a.LastUpdateTime.Equal(added.Alerts[0].LastUpdateTime) {
			t.Fatal("a shared burst has several stamps")
		}
	}
	resp, body = emu.Do(t, "POST", "/_emulator/alerts/updates", "", `{"ids":["`+added.IDs[0]+`"],"status":"InProgress","assignedTo":"soc@contoso.com"}`)
	var changed struct{ Alerts []emulator.AlertStamp }
	if resp.StatusCode != 200 || json.Unmarshal(body, &changed) != nil || !changed.Alerts[0].LastUpdateTime.After(added.Alerts[0].LastUpdateTime) {
		t.Errorf("POST updates: %d %s", resp.StatusCode, body)
	}
	_, a, _ := getAlert(t, emu, added.IDs[0], emu.AppToken(t))
	if a.Status != "InProgress" || *a.AssignedTo != "soc@contoso.com" {
		t.Errorf("after the update: %+v", a)
	}
	if resp, body := emu.Do(t, "POST", "/_emulator/alerts/updates", "", `{"count":5}`); resp.StatusCode != 200 || strings.Count(string(body), `"lastUpdateTime"`) != 5 {
		t.Errorf("random updates: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{`{"count":0}`, `{"count":1,"colour":"red"}`, `{"count":1,"machineId":"nope"}`} {
		if resp, _ := emu.Do(t, "POST", "/_emulator/alerts", "", bad); resp.StatusCode != 400 {
			t.Errorf("%s: %d", bad, resp.StatusCode)
		}
	}
	_, body = emu.Get(t, "/_emulator/tenant", "")
	if !strings.Contains(string(body), `"alerts":3000`) {
		t.Errorf("tenant counts: %s", body)
	}
	if resp, body := emu.Do(t, "PUT", "/_emulator/activity", "", `{"alertsPerMinute":30,"lateFraction":2}`); resp.StatusCode != 400 {
		t.Errorf("bad activity: %d %s", resp.StatusCode, body)
	}
	if resp, body := emu.Do(t, "PUT", "/_emulator/activity", "", `{"alertsPerMinute":30,"updatesPerMinute":10,"lateFraction":0.1}`); resp.StatusCode != 200 {
		t.Errorf("activity: %d %s", resp.StatusCode, body)
	}
	if got := emu.Activity(); got.AlertsPerMinute != 30 || got.UpdatesPerMinute != 10 {
		t.Errorf("activity %+v", got)
	}
}

func TestActivityMakesTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := emulator.Generate(emulator.GenerateOptions{Seed: 4, Machines: 30, Alerts: 20, Now: time.Now()})
		s, err := emulator.New(emulator.Options{Tenant: tn})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetActivity(emulator.Activity{AlertsPerMinute: 120, UpdatesPerMinute: 60, LateFraction: 0.25, BurstEverySeconds: 30, BurstSize: 40}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { s.RunActivity(ctx) })
		time.Sleep(time.Minute + time.Second/2)
		cancel()
		wg.Wait()
		// Two a second for a minute, and one burst 30 s in.
		if n := tn.AlertCount(); n < 20+110+40 || n > 20+130+40 {
			t.Errorf("%d alerts after a minute", n)
		}
		tok := tokenFrom(t, s, "https://api.securitycenter.microsoft.com/.default")
		var p struct {
			Value []struct {
				ID             string
				LastUpdateTime string
				Status         string
			}
		}
		json.Unmarshal(call(s, "GET", "/api/alerts?$select=id,lastUpdateTime,status", tok).Body.Bytes(), &p)
		if hidden := tn.AlertCount() - len(p.Value); hidden == 0 {
			t.Error("no alert is late")
		}
		stamps := map[string]int{}
		triaged := 0
		for _, a := range p.Value {
			stamps[a.LastUpdateTime]++
			if a.Status != "New" {
				triaged++
			}
		}
		shared := 0
		for _, n := range stamps {
			shared = max(shared, n)
		}
		// Some of the burst's alerts have changed since.
		if shared < 30 || shared > 40 || triaged == 0 {
			t.Errorf("largest group sharing a stamp %d (want most of the burst's 40), %d triaged", shared, triaged)
		}
	})
}
