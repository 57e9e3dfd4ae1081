package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// page is a machine list response, reduced to what paging tests look at.
type page struct {
	Context  string `json:"@odata.context"`
	Count    *int   `json:"@odata.count"`
	NextLink string `json:"@odata.nextLink"`
	Value    []struct {
		ID string `json:"id"`
	} `json:"value"`
}

func getPage(t *testing.T, emu *emulatortest.Emu, target, tok string) page {
	t.Helper()
	resp, body := emu.Get(t, target, tok)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", target, resp.StatusCode, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return p
}

func TestPaging(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(25000), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	tok := emu.AppToken(t)
	seen := map[string]bool{}

	// $top: at most $top rows and never a nextLink. The first page is the
	// full machine shape; the rest select the id only, which keeps the test
	// quick under the race detector.
	for i, want := range []int{10000, 10000, 5000} {
		q := fmt.Sprintf("/api/machines?$top=10000&$skip=%d", i*10000)
		if i > 0 {
			q += "&$select=id"
		}
		p := getPage(t, emu, q, tok)
		if len(p.Value) != want || p.NextLink != "" {
			t.Fatalf("page %d: %d rows, nextLink %q; want %d rows and no nextLink", i, len(p.Value), p.NextLink, want)
		}
		for _, m := range p.Value {
			seen[m.ID] = true
		}
	}
	if len(seen) != 25000 {
		t.Errorf("$top pages gave %d distinct machines, want 25000", len(seen))
	}

	// No $top: pages of 10,000 chained by an absolute nextLink that keeps
	// the rest of the query as sent.
	next := "/api/machines?$filter=lastSeen+gt+2000-01-01Z&$select=id"
	var sizes []int
	var links []string
	for next != "" {
		p := getPage(t, emu, next, tok)
		sizes = append(sizes, len(p.Value))
		links = append(links, p.NextLink)
		next = p.NextLink
	}
	if diff := cmp.Diff([]int{10000, 10000, 5000}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	for i, skip := range []int{10000, 20000} {
		if want := fmt.Sprintf("%s/api/machines?$filter=lastSeen+gt+2000-01-01Z&$select=id&$skip=%d", emu.URL, skip); links[i] != want {
			t.Errorf("nextLink %d: %q, want %q", i, links[i], want)
		}
	}

	// Past the end: an empty page, as JupiterOne recorded.
	resp, body := emu.Get(t, "/api/machines?$top=1&$skip=25000", tok)
	if want := `{"@odata.context":"` + emu.URL + `/api/$metadata#Machines","value":[]}`; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("skip past the end: %d %s", resp.StatusCode, body)
	}
}

func TestQueryOptionErrors(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	tok := emu.AppToken(t)
	tests := map[string]string{
		"$top=10001":                            "The limit of '10000' for Top query has been exceeded. The value from the incoming request is '10001'.",
		"$top=-1":                               "Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value.",
		"$top=all":                              "Invalid value 'all' for $top query option found. The $top query option requires a non-negative integer value.",
		"$filter=nosuch+eq+1":                   "Could not find a property named 'nosuch' on type 'microsoft.windowsDefenderATP.api.PublicMachineDto'.",
		"$filter=agentVersion+eq+'1'":           "The property 'agentVersion' cannot be used in the $filter query option.",
		"$filter=riskScore+eq":                  "Expression expected at position 12 in 'riskScore eq'.",
		"$filter=contains(computerDnsName,'a')": "Function 'contains' is not allowed. To allow it, set the 'AllowedFunctions' property on EnableQueryAttribute or QueryValidationSettings.",
		"$select=id,nosuch":                     "Could not find a property named 'nosuch' on type 'microsoft.windowsDefenderATP.api.PublicMachineDto'.",
		"$orderby=machineTags":                  "The property 'machineTags' cannot be used in the $orderby query option.",
		"$expand=evidence":                      "The query parameter '$expand' is not supported.",
		"$count=maybe":                          "'maybe' is not a valid count option.",
	}
	for q, want := range tests {
		resp, body := emu.Get(t, "/api/machines?"+q, tok)
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
			continue
		}
		if e := decodeErr(t, body); e.Error.Code != "ODataError" || e.Error.Message != want {
			t.Errorf("%s:\n got %+v\nwant ODataError %q", q, e.Error, want)
		}
	}
}

// fixtureTenant builds a tenant from the machines of the docs' and live
// fixtures, so that filters can be checked against known data.
func fixtureTenant(t *testing.T) (*emulator.Tenant, []map[string]any) {
	t.Helper()
	var all []json.RawMessage
	for _, f := range []string{
		"docs/odata-machines-filter-riskscore-high.json",
		"observed/get_machines.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines.json",
		"peers/graph-microsoft-endpoint-defender/GET_api_machines_top1_skip0.json",
	} {
		var list struct {
			Value []json.RawMessage `json:"value"`
		}
		data, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, list.Value...)
	}
	data, err := json.Marshal(map[string]any{"tenantId": "f5d73c4c-bb3d-421b-8bee-424916a4acca", "machines": all})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tenant.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tenant, err := emulator.LoadTenantFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ms []map[string]any
	for _, raw := range all {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return tenant, ms
}

func TestFiltersOnFixtureMachines(t *testing.T) {
	tenant, ms := fixtureTenant(t)
	emu := emulatortest.New(t, emulatortest.WithTenant(tenant))
	tok := emu.AppToken(t)
	seen := func(m map[string]any) time.Time {
		ts, _ := time.Parse(time.RFC3339Nano, m["lastSeen"].(string))
		return ts
	}
	tests := []struct {
		filter string
		keep   func(m map[string]any) bool
	}{
		// The examples of Microsoft's OData page (exposed-apis-odata-samples.md).
		{"riskScore+eq+'High'", func(m map[string]any) bool { return m["riskScore"] == "High" }},
		{"healthStatus+ne+'Active'", func(m map[string]any) bool { return m["healthStatus"] != "Active" }},
		{"lastSeen gt 2018-08-01Z", func(m map[string]any) bool { return true }},
		{"startswith(computerDnsName,'mymachine')", func(m map[string]any) bool { return strings.HasPrefix(m["computerDnsName"].(string), "mymachine") }},
		// Unquoted date-times with 0 and 7 fractional digits.
		{"lastSeen ge 2024-01-25T18:45:56Z", func(m map[string]any) bool { return !seen(m).Before(time.Date(2024, 1, 25, 18, 45, 56, 0, time.UTC)) }},
		{"lastSeen lt 2024-03-26T00:04:48.5771930Z and osPlatform eq 'Ubuntu'", func(m map[string]any) bool {
			return seen(m).Before(time.Date(2024, 3, 26, 0, 4, 48, 577193000, time.UTC)) && m["osPlatform"] == "Ubuntu"
		}},
		{"(osPlatform eq 'Debian' or osPlatform eq 'WindowsServer2022') and not (exposureLevel eq 'High')", func(m map[string]any) bool {
			return (m["osPlatform"] == "Debian" || m["osPlatform"] == "WindowsServer2022") && m["exposureLevel"] != "High"
		}},
		{"rbacGroupId eq 140", func(m map[string]any) bool { return m["rbacGroupId"] == 140.0 }},
		{"aadDeviceId eq null", func(m map[string]any) bool { return m["aadDeviceId"] == nil }},
		{"machineTags/any(t: t eq 'test tag 1')", func(m map[string]any) bool {
			tags, _ := m["machineTags"].([]any)
			return slices.Contains(tags, any("test tag 1"))
		}},
		{"onboardingStatus eq 'CanBeOnboarded'", func(m map[string]any) bool { return m["onboardingStatus"] == "CanBeOnboarded" }},
		{"COMPUTERDNSNAME eq 'SE-POV-DESKTOP'", func(m map[string]any) bool { return m["computerDnsName"] == "se-pov-desktop" }},
		{"lastIpAddress eq '10.6.0.6' and version eq '20.4'", func(m map[string]any) bool { return m["lastIpAddress"] == "10.6.0.6" && m["version"] == "20.4" }},
		{"id eq '556B3952ACB0BFF29816D267822305781CC183EC'", func(m map[string]any) bool { return m["id"] == "556b3952acb0bff29816d267822305781cc183ec" }},
		{"deviceValue eq 'Normal' and riskScore ne 'None'", func(m map[string]any) bool { return m["deviceValue"] == "Normal" && m["riskScore"] != "None" }},
	}
	for _, tt := range tests {
		var want []string
		for _, m := range ms {
			if tt.keep(m) {
				want = append(want, m["id"].(string))
			}
		}
		p := getPage(t, emu, "/api/machines?$filter="+strings.ReplaceAll(url.QueryEscape(tt.filter), "%2B", "+")+"&$count=true", tok)
		var got []string
		for _, m := range p.Value {
			got = append(got, m.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("$filter=%s (-want +got):\n%s", tt.filter, diff)
		}
		if p.Count == nil || *p.Count != len(want) {
			t.Errorf("$filter=%s: @odata.count %v, want %d", tt.filter, p.Count, len(want))
		}
	}
}

func TestSelectOrderByCount(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300))
	tok := emu.AppToken(t)

	resp, body := emu.Get(t, "/api/machines?$select=computerDnsName,ID&$top=5", tok)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var sel struct {
		Context string           `json:"@odata.context"`
		Value   []map[string]any `json:"value"`
	}
	if err := json.Unmarshal(body, &sel); err != nil {
		t.Fatal(err)
	}
	if want := emu.URL + "/api/$metadata#Machines(computerDnsName,id)"; sel.Context != want {
		t.Errorf("context %q, want %q", sel.Context, want)
	}
	for _, m := range sel.Value {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		if diff := cmp.Diff([]string{"computerDnsName", "id"}, sortStrings(keys)); diff != "" {
			t.Errorf("selected keys (-want +got):\n%s", diff)
		}
	}

	var sorted struct {
		Count int `json:"@odata.count"`
		Value []struct {
			LastSeen time.Time `json:"lastSeen"`
			Name     string    `json:"computerDnsName"`
			Health   string    `json:"healthStatus"`
		} `json:"value"`
	}
	_, body = emu.Get(t, "/api/machines?$filter=healthStatus+eq+'Active'&$orderby=lastSeen+desc&$count=true&$top=50", tok)
	if err := json.Unmarshal(body, &sorted); err != nil {
		t.Fatal(err)
	}
	if len(sorted.Value) != 50 || sorted.Count <= 50 {
		t.Fatalf("%d rows, count %d", len(sorted.Value), sorted.Count)
	}
	for i := 1; i < len(sorted.Value); i++ {
		if sorted.Value[i].LastSeen.After(sorted.Value[i-1].LastSeen) || sorted.Value[i].Health != "Active" {
			t.Fatalf("row %d out of order or unfiltered: %+v after %+v", i, sorted.Value[i], sorted.Value[i-1])
		}
	}
	_, body = emu.Get(t, "/api/machines?$orderby=osPlatform,computerDnsName+desc&$top=300", tok)
	if err := json.Unmarshal(body, &sorted); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(sorted.Value))
	for i, m := range sorted.Value {
		names[i] = m.Name
	}
	if len(names) != 300 {
		t.Fatalf("%d rows", len(names))
	}
	var total struct {
		Count int `json:"@odata.count"`
	}
	_, body = emu.Get(t, "/api/machines?$count=true&$top=0", tok)
	if err := json.Unmarshal(body, &total); err != nil || total.Count != 300 {
		t.Errorf("$count=true&$top=0: %s", body)
	}
}

func TestEmptyTenantListIs404(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(0))
	resp, body := emu.Get(t, "/api/machines", emu.AppToken(t))
	if e := decodeErr(t, body); resp.StatusCode != 404 || e.Error.Code != "ResourceNotFound" {
		t.Errorf("empty tenant: %d %s", resp.StatusCode, body)
	}
}

type machineJSON struct {
	Context     string   `json:"@odata.context"`
	ID          string   `json:"id"`
	Name        string   `json:"computerDnsName"`
	Tags        []string `json:"machineTags"`
	DeviceValue string   `json:"deviceValue"`
	LastIP      string   `json:"lastIpAddress"`
	Health      string   `json:"healthStatus"`
}

func getMachine(t *testing.T, emu *emulatortest.Emu, key, tok string) (int, machineJSON, []byte) {
	t.Helper()
	resp, body := emu.Get(t, "/api/machines/"+url.PathEscape(key), tok)
	var m machineJSON
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, m, body
}

func TestGetMachineByIDOrName(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	tok := emu.AppToken(t)
	p := getPage(t, emu, "/api/machines?$top=1", tok)
	id := p.Value[0].ID
	status, m, body := getMachine(t, emu, strings.ToUpper(id), tok)
	if status != 200 || m.ID != id {
		t.Fatalf("by id: %d %s", status, body)
	}
	if !strings.HasPrefix(string(body), `{"@odata.context":"`+emu.URL+`/api/$metadata#Machines/$entity","id":`) {
		t.Errorf("entity does not start with its context: %.120s", body)
	}
	status, byName, _ := getMachine(t, emu, strings.ToUpper(m.Name), tok)
	if status != 200 || byName.ID != id {
		t.Errorf("by name %s: %d %s", m.Name, status, byName.ID)
	}
	status, _, body = getMachine(t, emu, "nosuchmachine", tok)
	if e := decodeErr(t, body); status != 404 || e.Error.Code != "ResourceNotFound" || e.Error.Message != "Machine nosuchmachine was not found" {
		t.Errorf("unknown machine: %d %s", status, body)
	}
}

func TestFindByIPAndTag(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(200), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	var list struct {
		Value []machineJSON `json:"value"`
	}
	_, body := emu.Get(t, "/api/machines?$filter=healthStatus+eq+'Active'+and+onboardingStatus+eq+'Onboarded'&$top=1", tok)
	if err := json.Unmarshal(body, &list); err != nil || len(list.Value) != 1 {
		t.Fatalf("no active machine: %s", body)
	}
	target := list.Value[0]
	ts := clk.Now().Add(-time.Minute).Format(time.RFC3339)

	resp, body := emu.Get(t, "/api/machines/findbyip(ip='"+target.LastIP+"',timestamp="+ts+")", tok)
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil {
		t.Fatalf("findbyip: %d %s", resp.StatusCode, body)
	}
	if !slices.ContainsFunc(list.Value, func(m machineJSON) bool { return m.ID == target.ID }) {
		t.Errorf("findbyip(%s) does not return %s", target.LastIP, target.ID)
	}
	for _, bad := range []struct{ path, code string }{
		{"findbyip(ip='10.0.0.300',timestamp=" + ts + ")", "InvalidIpAddress"},
		{"findbyip(ip='10.0.0.1',timestamp=" + clk.Now().Add(-31*24*time.Hour).Format(time.RFC3339) + ")", "InvalidInput"},
		{"findbyip(ip='10.0.0.1',timestamp=yesterday)", "InvalidInput"},
		{"findbyip(ip='10.0.0.1')", "MissingRequiredParameter"},
	} {
		resp, body := emu.Get(t, "/api/machines/"+bad.path, tok)
		if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != bad.code {
			t.Errorf("%s: %d %s, want 400 %s", bad.path, resp.StatusCode, body, bad.code)
		}
	}

	// Tag two machines, find them by tag and by prefix.
	for _, m := range []string{target.ID, target.Name} {
		if resp, body := emu.Do(t, "POST", "/api/machines/"+m+"/tags", tok, `{"Value":"Emulator-Tag-`+m[:4]+`","Action":"Add"}`); resp.StatusCode != 200 {
			t.Fatalf("tag: %d %s", resp.StatusCode, body)
		}
	}
	resp, body = emu.Get(t, "/api/machines/findbytag?tag=emulator-tag-"+target.ID[:4], tok)
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil || len(list.Value) != 1 || list.Value[0].ID != target.ID {
		t.Errorf("findbytag: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/api/machines/findbytag?tag=Emulator-Tag&useStartsWithFilter=true", tok)
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil || len(list.Value) != 1 || len(list.Value[0].Tags) < 2 {
		t.Errorf("findbytag with prefix: %d %s", resp.StatusCode, body)
	}
	if resp, _ := emu.Get(t, "/api/machines/findbytag", tok); resp.StatusCode != 400 {
		t.Errorf("findbytag without tag: %d", resp.StatusCode)
	}
}

func TestMachineUpdates(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	tok := emu.AppToken(t)
	ids := emu.AddMachines(3)
	id := ids[0]

	resp, body := emu.Do(t, "PATCH", "/api/machines/"+id, tok, `{"machineTags":["Demo Device","Windows 10"],"deviceValue":"High"}`)
	var m machineJSON
	if err := json.Unmarshal(body, &m); resp.StatusCode != 200 || err != nil {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	if diff := cmp.Diff(machineJSON{Context: m.Context, ID: id, Name: m.Name, Tags: []string{"Demo Device", "Windows 10"}, DeviceValue: "High", LastIP: m.LastIP, Health: m.Health}, m); diff != "" {
		t.Errorf("PATCH result (-want +got):\n%s", diff)
	}

	resp, body = emu.Do(t, "POST", "/api/machines/"+id+"/tags", tok, `{"Value":"Windows 10","Action":"Remove"}`)
	if err := json.Unmarshal(body, &m); resp.StatusCode != 200 || err != nil || !slices.Equal(m.Tags, []string{"Demo Device"}) {
		t.Errorf("remove tag: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Do(t, "POST", "/api/machines/"+id+"/setDeviceValue", tok, `{"DeviceValue":"Low"}`)
	if err := json.Unmarshal(body, &m); resp.StatusCode != 200 || err != nil || m.DeviceValue != "Low" {
		t.Errorf("setDeviceValue: %d %s", resp.StatusCode, body)
	}

	// Body parameters are case-sensitive.
	for _, bad := range []struct{ method, path, body, code string }{
		{"POST", "/api/machines/" + id + "/tags", `{"value":"x","action":"Add"}`, "InvalidRequestBody"},
		{"POST", "/api/machines/" + id + "/tags", `{"Value":"x","Action":"add"}`, "InvalidRequestBody"},
		{"POST", "/api/machines/" + id + "/tags", `{"Action":"Add"}`, "MissingRequiredParameter"},
		{"POST", "/api/machines/" + id + "/tags", `not json`, "InvalidRequestBody"},
		{"POST", "/api/machines/" + id + "/setDeviceValue", `{"deviceValue":"Low"}`, "InvalidRequestBody"},
		{"POST", "/api/machines/" + id + "/setDeviceValue", `{"DeviceValue":"Critical"}`, "InvalidRequestBody"},
		{"PATCH", "/api/machines/" + id, `{"MachineTags":["x"]}`, "InvalidRequestBody"},
		{"PATCH", "/api/machines/" + id, `{"deviceValue":"Huge"}`, "InvalidRequestBody"},
	} {
		resp, body := emu.Do(t, bad.method, bad.path, tok, bad.body)
		if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != bad.code {
			t.Errorf("%s %s %s: %d %s, want 400 %s", bad.method, bad.path, bad.body, resp.StatusCode, body, bad.code)
		}
	}
	if resp, _ := emu.Do(t, "POST", "/api/machines/nosuch/tags", tok, `{"Value":"x","Action":"Add"}`); resp.StatusCode != 404 {
		t.Errorf("tag unknown machine: %d", resp.StatusCode)
	}

	// Many machines at once.
	req, _ := json.Marshal(map[string]any{"Value": "Batch", "Action": "Add", "MachineIds": append(ids, "0000000000000000000000000000000000000000")})
	resp, body = emu.Do(t, "POST", "/api/machines/AddOrRemoveTagForMultipleMachines", tok, string(req))
	var list struct {
		Value []machineJSON `json:"value"`
	}
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil || len(list.Value) != 3 {
		t.Fatalf("AddOrRemoveTagForMultipleMachines: %d %s", resp.StatusCode, body)
	}
	for _, m := range list.Value {
		if !slices.Contains(m.Tags, "Batch") {
			t.Errorf("%s not tagged: %v", m.ID, m.Tags)
		}
	}
	tooMany := make([]string, 501)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("%040d", i)
	}
	req, _ = json.Marshal(map[string]any{"Value": "Batch", "Action": "Add", "MachineIds": tooMany})
	resp, body = emu.Do(t, "POST", "/api/machines/AddOrRemoveTagForMultipleMachines", tok, string(req))
	if e := decodeErr(t, body); resp.StatusCode != 400 || e.Error.Code != "MaximumBatchSizeExceeded" || e.Error.Message != "Maximum batch size exceeded. Received: 501, allowed: 500." {
		t.Errorf("501 ids: %d %s", resp.StatusCode, body)
	}
}
