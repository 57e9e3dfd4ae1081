package emulator_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

func newTVMEmu(t *testing.T, machines int, opts ...emulatortest.Option) (*emulatortest.Emu, *clock, string) {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)}
	emu := emulatortest.New(t, append([]emulatortest.Option{emulatortest.WithMachines(machines), emulatortest.WithNow(c.Now)}, opts...)...)
	return emu, c, emu.AppToken(t)
}

func getJSON(t *testing.T, emu *emulatortest.Emu, path, token string, v any) *http.Response {
	t.Helper()
	resp, body := emu.Get(t, path, token)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

type tvmPage struct {
	Context  string           `json:"@odata.context"`
	Value    []map[string]any `json:"value"`
	NextLink string           `json:"@odata.nextLink"`
}

// follow reads every page of a collection.
func follow(t *testing.T, emu *emulatortest.Emu, path, token string) ([]map[string]any, int) {
	t.Helper()
	var all []map[string]any
	calls := 0
	for path != "" {
		var p tvmPage
		getJSON(t, emu, path, token, &p)
		calls++
		all = append(all, p.Value...)
		path = p.NextLink
	}
	return all, calls
}

// countExportRecords fetches an export file and counts its JSON Lines records.
func countExportRecords(t *testing.T, emu *emulatortest.Emu, link string) int {
	t.Helper()
	resp, body := emu.Get(t, link, "")
	if resp.StatusCode != 200 {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) < 2 || line[0] != '{' || !json.Valid(line) {
			t.Fatalf("line %q is not a JSON object", line)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFilesExportMatchesTheTenant(t *testing.T) {
	emu, clk, tok := newTVMEmu(t, 250, emulatortest.WithExportFileMachines(200), emulatortest.WithVulnsPerMachine(50))
	want := emu.TenantCounts(t)
	if want["vulnerabilities"] < 250*30 || want["software"] < 250*10 || want["cves"] == 0 {
		t.Fatalf("tenant counts %v", want)
	}
	for _, tc := range []struct {
		path string
		rows int
	}{
		{"/api/machines/SoftwareVulnerabilitiesExport?sasValidHours=2", want["vulnerabilities"] + want["vulnerabilitiesWithoutCve"]},
		{"/api/machines/SoftwareInventoryExport", want["software"]},
		{"/api/machines/SecureConfigurationsAssessmentExport", -1},
	} {
		var files struct {
			Context       string   `json:"@odata.context"`
			ExportFiles   []string `json:"exportFiles"`
			GeneratedTime string   `json:"generatedTime"`
		}
		getJSON(t, emu, tc.path, tok, &files)
		if len(files.ExportFiles) != 2 || !strings.HasSuffix(files.Context, "#microsoft.windowsDefenderATP.api.ExportFilesResponse") {
			t.Fatalf("%s: %+v", tc.path, files)
		}
		if gen, err := time.Parse(time.RFC3339, files.GeneratedTime); err != nil || !gen.Equal(time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: generatedTime %q, want the 06:00 snapshot", tc.path, files.GeneratedTime)
		}
		rows := 0
		for _, link := range files.ExportFiles {
			u := strings.TrimPrefix(link, emu.URL)
			if !strings.HasPrefix(u, "/tvm-export/2026-11-20/0600/") || !strings.Contains(u, "/json/OrgId="+emu.TenantID()+"/part-") || !strings.Contains(u, "&sig=") {
				t.Errorf("link %s", link)
			}
			rows += countExportRecords(t, emu, link)
		}
		if tc.rows >= 0 && rows != tc.rows {
			t.Errorf("%s: files hold %d rows, the tenant says %d", tc.path, rows, tc.rows)
		}
	}
	// The links are blob SAS links: they expire with storage's 403, and a
	// tampered one is refused.
	var files struct {
		ExportFiles []string `json:"exportFiles"`
	}
	getJSON(t, emu, "/api/machines/SoftwareVulnerabilitiesExport", tok, &files)
	link := files.ExportFiles[0]
	req, _ := http.NewRequest("GET", link, nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err := emu.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || len(part) != 10 {
		t.Errorf("range request: %d, %d bytes", resp.StatusCode, len(part))
	}
	resp, body := emu.Get(t, strings.Replace(link, "sig=", "sig=x", 1), "")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code>") || !strings.Contains(string(body), "Signature did not match") {
		t.Errorf("tampered link: %d %s", resp.StatusCode, body)
	}
	clk.Advance(61 * time.Minute)
	resp, body = emu.Get(t, link, "")
	if resp.StatusCode != 403 || resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" || !strings.Contains(string(body), "has to be after current time") {
		t.Errorf("expired link: %d %s %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := emu.Get(t, "/api/machines/SoftwareVulnerabilitiesExport?sasValidHours=7", tok); resp.StatusCode != 400 {
		t.Errorf("sasValidHours=7: %d", resp.StatusCode)
	}
	// The files API allows 5 calls a minute.
	throttled := false
	for range 6 {
		if resp, _ := emu.Get(t, "/api/machines/SoftwareInventoryExport", tok); resp.StatusCode == 429 {
			throttled = resp.Header.Get("Retry-After") != ""
		}
	}
	if !throttled {
		t.Error("the files export was not limited to 5 calls a minute")
	}
}

func TestJSONExportPages(t *testing.T) {
	emu, _, tok := newTVMEmu(t, 150, emulatortest.WithExportFileMachines(40))
	want := emu.TenantCounts(t)
	rows, calls := follow(t, emu, "/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=1500", tok)
	total := want["vulnerabilities"] + want["vulnerabilitiesWithoutCve"]
	if len(rows) != total || calls != (total+1499)/1500 {
		t.Fatalf("%d rows in %d calls, want %d rows", len(rows), calls, total)
	}
	ids := map[string]bool{}
	for _, r := range rows {
		ids[r["id"].(string)] = true
	}
	if len(ids) != total {
		t.Errorf("%d distinct rows of %d: pages overlap", len(ids), total)
	}
	var p tvmPage
	getJSON(t, emu, "/api/machines/SoftwareVulnerabilitiesByMachine?$top=7", tok, &p)
	if len(p.Value) != 7 || p.NextLink != "" {
		t.Errorf("$top=7: %d rows, nextLink %q", len(p.Value), p.NextLink)
	}
	getJSON(t, emu, "/api/machines/SoftwareInventoryByMachine?pagesize=100", tok, &p)
	if len(p.Value) != 100 || !strings.Contains(p.NextLink, "pagesize=100&$skiptoken=") {
		t.Errorf("inventory page: %d rows, nextLink %q", len(p.Value), p.NextLink)
	}
	for _, bad := range []string{"pageSize=200001", "pageSize=0", "$skiptoken=nonsense", "$filter=x"} {
		if resp, _ := emu.Get(t, "/api/machines/SoftwareVulnerabilitiesByMachine?"+bad, tok); resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestDeltaAPI(t *testing.T) {
	emu, clk, tok := newTVMEmu(t, 150)
	since := "2026-11-20T06:00:00Z"
	for _, bad := range []string{"", "?sinceTime=yesterday", "?sinceTime=2026-11-01T00:00:00Z"} {
		if resp, body := emu.Get(t, "/api/machines/SoftwareVulnerabilityChangesByMachine"+bad, tok); resp.StatusCode != 400 {
			t.Errorf("%q: %d %s", bad, resp.StatusCode, body)
		}
	}
	// Within the snapshot nothing changed yet.
	rows, calls := follow(t, emu, "/api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime="+since, tok)
	if len(rows) != 0 || calls != 1 {
		t.Fatalf("no time passed: %d changes", len(rows))
	}
	clk.Advance(5 * 24 * time.Hour)
	tok = emu.AppToken(t) // the old one expired
	rows, calls = follow(t, emu, "/api/machines/SoftwareVulnerabilityChangesByMachine?pageSize=500&sinceTime="+since, tok)
	statuses := map[string]int{}
	for _, r := range rows {
		statuses[r["status"].(string)]++
		ts, _ := r["eventTimestamp"].(string)
		if len(ts) != len("2020-11-03 10:13:34.8476880") || ts <= "2026-11-20 06:00:00" {
			t.Fatalf("eventTimestamp %q", ts)
		}
	}
	if statuses["New"] == 0 || statuses["Fixed"] == 0 || calls < 2 {
		t.Errorf("5 days: %v in %d calls", statuses, calls)
	}
}

func TestTVMEndpoints(t *testing.T) {
	emu, _, tok := newTVMEmu(t, 200)
	want := emu.TenantCounts(t)
	// The whole catalogue, in 8,000-CVE pages (decoded lightly: it is big).
	type cveRef struct {
		ID      string  `json:"id"`
		Exposed float64 `json:"exposedMachines"`
	}
	var cves []cveRef
	calls := 0
	for path := "/api/vulnerabilities"; path != ""; calls++ {
		var p struct {
			Value    []cveRef `json:"value"`
			NextLink string   `json:"@odata.nextLink"`
		}
		getJSON(t, emu, path, tok, &p)
		cves, path = append(cves, p.Value...), p.NextLink
	}
	if len(cves) != want["cves"] || calls != (want["cves"]+7999)/8000 {
		t.Errorf("catalogue: %d CVEs in %d calls, tenant says %d", len(cves), calls, want["cves"])
	}
	if resp, _ := emu.Get(t, "/api/vulnerabilities?$top=8001", tok); resp.StatusCode != 400 {
		t.Errorf("$top=8001: %d", resp.StatusCode)
	}
	var exposed map[string]any
	for _, c := range cves {
		if c.Exposed > 0 {
			exposed = map[string]any{"id": c.ID, "exposedMachines": c.Exposed}
			break
		}
	}
	id := exposed["id"].(string)
	var one map[string]any
	getJSON(t, emu, "/api/vulnerabilities/"+strings.ToLower(id), tok, &one)
	if one["id"] != id || !strings.HasSuffix(one["@odata.context"].(string), "#Vulnerabilities/$entity") {
		t.Errorf("by id: %v", one)
	}
	refs, _ := follow(t, emu, "/api/vulnerabilities/"+id+"/machineReferences", tok)
	if float64(len(refs)) != exposed["exposedMachines"].(float64) {
		t.Errorf("%s: %d machine references, exposedMachines %v", id, len(refs), exposed["exposedMachines"])
	}
	machineID := refs[0]["id"].(string)
	mv, _ := follow(t, emu, "/api/machines/"+machineID+"/vulnerabilities", tok)
	found := false
	for _, v := range mv {
		found = found || v["id"] == id
	}
	if !found {
		t.Errorf("machine %s does not list %s", machineID, id)
	}
	var filtered tvmPage
	getJSON(t, emu, "/api/vulnerabilities?$filter="+url.QueryEscape("severity eq 'Critical' and cvssV3 ge 9.5"), tok, &filtered)
	for _, v := range filtered.Value {
		if v["severity"] != "Critical" || v["cvssV3"].(float64) < 9.5 {
			t.Fatalf("filter let through %v", v)
		}
	}
	sw, _ := follow(t, emu, "/api/Software", tok)
	if len(sw) < 20 {
		t.Fatalf("%d software products", len(sw))
	}
	swID := sw[0]["id"].(string)
	dist, _ := follow(t, emu, "/api/Software/"+swID+"/distributions", tok)
	installs := 0
	for _, d := range dist {
		installs += int(d["installations"].(float64))
	}
	srefs, _ := follow(t, emu, "/api/Software/"+swID+"/machineReferences", tok)
	if installs == 0 || installs != len(srefs) {
		t.Errorf("%s: %d installations, %d machines", swID, installs, len(srefs))
	}
	for _, path := range []string{
		"/api/Software/" + swID, "/api/Software/" + swID + "/vulnerabilities", "/api/Software/microsoft-_-windows_11/getmissingkbs",
		"/api/machines/" + machineID + "/software", "/api/machines/" + machineID + "/recommendations", "/api/machines/" + machineID + "/getmissingkbs",
		"/api/recommendations", "/api/exposureScore", "/api/exposureScore/ByMachineGroups", "/api/configurationScore",
		"/api/vulnerabilities/machinesVulnerabilities?$top=50",
	} {
		if resp, body := emu.Get(t, path, tok); resp.StatusCode != 200 || !json.Valid(body) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	var recs tvmPage
	getJSON(t, emu, "/api/recommendations", tok, &recs)
	recID := recs.Value[0]["id"].(string)
	for _, sub := range []string{"", "/machineReferences", "/vulnerabilities"} {
		if resp, body := emu.Get(t, "/api/recommendations/"+recID+sub, tok); resp.StatusCode != 200 {
			t.Errorf("recommendation %s%s: %d %s", recID, sub, resp.StatusCode, body)
		}
	}
	for path, code := range map[string]int{
		"/api/vulnerabilities/CVE-1999-0000": 404, "/api/Software/nobody-_-nothing": 404, "/api/machines/nosuch/vulnerabilities": 404,
		"/api/recommendations/va-_-nobody-_-nothing": 404,
	} {
		if resp, _ := emu.Get(t, path, tok); resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	// Each API needs its own permission.
	swOnly := emu.Token(t, "Software.Read.All")
	if resp, body := emu.Get(t, "/api/machines/SoftwareVulnerabilitiesExport", swOnly); resp.StatusCode != 403 || !strings.Contains(string(body), "Vulnerability.Read.All") {
		t.Errorf("vulnerability export with Software.Read.All: %d %s", resp.StatusCode, body)
	}
	if resp, _ := emu.Get(t, "/api/machines/SoftwareInventoryExport", swOnly); resp.StatusCode != 200 {
		t.Errorf("inventory export with Software.Read.All: %d", resp.StatusCode)
	}
}

// The machine vulnerabilities API has its own limit of 50 calls a minute.
func TestMachineVulnerabilitiesLimit(t *testing.T) {
	emu, _, tok := newTVMEmu(t, 3)
	var ms tvmPage
	getJSON(t, emu, "/api/machines", tok, &ms)
	id := ms.Value[0]["id"].(string)
	codes := map[int]int{}
	for range 51 {
		resp, _ := emu.Get(t, "/api/machines/"+id+"/vulnerabilities", tok)
		codes[resp.StatusCode]++
	}
	if codes[200] != 50 || codes[429] != 1 {
		t.Errorf("51 calls: %v", codes)
	}
}

// fixtureRecords reads the records of a fixture: a collection's value, a
// single object, or JSON Lines.
func fixtureRecords(t *testing.T, name string, pick func(map[string]any) bool) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if strings.HasSuffix(name, ".ndjson") {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, r)
		}
	} else {
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v, ok := obj["value"].([]any); ok {
			for _, x := range v {
				out = append(out, x.(map[string]any))
			}
		} else {
			delete(obj, "@odata.context")
			out = append(out, obj)
		}
	}
	var kept []map[string]any
	for _, r := range out {
		if pick == nil || pick(r) {
			kept = append(kept, r)
		}
	}
	return kept
}

// checkShape holds emulated records to the shape of Microsoft's: every key
// the service sends is there, with a JSON type the service has been seen to
// send (null only where it was seen null, unless it was only ever seen
// null).
func checkShape(t *testing.T, what string, live, got []map[string]any) {
	t.Helper()
	if len(got) == 0 {
		t.Fatalf("%s: no records to check", what)
	}
	ls, gs := shape{}, shape{}
	for _, m := range live {
		ls.learn("", m)
	}
	for _, m := range got {
		gs.learn("", m)
		for path := range ls {
			if strings.Contains(path, ".") || strings.Contains(path, "[]") {
				continue
			}
			if _, ok := m[path]; !ok {
				t.Errorf("%s: record lacks %q: %v", what, path, m)
				return
			}
		}
	}
	for path, seen := range ls {
		for typ := range gs[path] {
			if !seen[typ] && !(typ != "null" && onlyNull(seen)) {
				t.Errorf("%s: %s: the emulator sends %s, Microsoft %v", what, path, typ, keys(seen))
			}
		}
	}
}

func camelCase(r map[string]any) bool { _, ok := r["id"]; return ok }

func TestTVMShapesMatchMicrosoft(t *testing.T) {
	emu, clk, tok := newTVMEmu(t, 150)
	vulnRows, _ := follow(t, emu, "/api/machines/SoftwareVulnerabilitiesByMachine", tok)
	checkShape(t, "AssetVulnerability", fixtureRecords(t, "docs/export-vulns-by-machine.json", nil), vulnRows)
	inv, _ := follow(t, emu, "/api/machines/SoftwareInventoryByMachine", tok)
	checkShape(t, "AssetSoftware", fixtureRecords(t, "docs/export-softwareinventory-by-machine.json", nil), inv)
	cfg, _ := follow(t, emu, "/api/machines/SecureConfigurationsAssessmentByMachine", tok)
	checkShape(t, "AssetConfiguration", fixtureRecords(t, "docs/export-secureconfig-by-machine.json", nil), cfg)
	cves, _ := follow(t, emu, "/api/vulnerabilities?$top=1000", tok)
	checkShape(t, "Vulnerability", append(fixtureRecords(t, "observed/list_vulnerabilities.json", nil), fixtureRecords(t, "docs/vulnerabilities-list.json", nil)...), cves)
	var machines tvmPage
	getJSON(t, emu, "/api/machines?$top=10", tok, &machines)
	var perMachine []map[string]any
	for _, m := range machines.Value {
		v, _ := follow(t, emu, "/api/machines/"+m["id"].(string)+"/vulnerabilities", tok)
		perMachine = append(perMachine, v...)
	}
	checkShape(t, "machine vulnerabilities", fixtureRecords(t, "peers/graph-microsoft-endpoint-defender/GET_api_machines_6dd3f7ce_vulnerabilities.json", nil), perMachine)
	mv, _ := follow(t, emu, "/api/vulnerabilities/machinesVulnerabilities?$top=500", tok)
	checkShape(t, "PublicAssetVulnerabilityDto", fixtureRecords(t, "docs/vulnerabilities-machinesvulnerabilities.json", nil), mv)
	sw, _ := follow(t, emu, "/api/Software", tok)
	checkShape(t, "Software", fixtureRecords(t, "docs/software-list.json", nil), sw)
	recs, _ := follow(t, emu, "/api/recommendations", tok)
	checkShape(t, "Recommendation", fixtureRecords(t, "docs/recommendation-get.json", nil), recs)
	var score map[string]any
	getJSON(t, emu, "/api/exposureScore", tok, &score)
	delete(score, "@odata.context")
	checkShape(t, "ExposureScore", fixtureRecords(t, "docs/exposurescore-get.json", nil), []map[string]any{score})
	groups, _ := follow(t, emu, "/api/exposureScore/ByMachineGroups", tok)
	checkShape(t, "ExposureScore by group", fixtureRecords(t, "docs/exposurescore-bymachinegroups.json", nil), groups)
	kbs, _ := follow(t, emu, "/api/Software/microsoft-_-windows_11/getmissingkbs", tok)
	checkShape(t, "PublicProductFixDto", fixtureRecords(t, "docs/machine-getmissingkbs.json", nil), kbs)
	clk.Advance(3 * 24 * time.Hour)
	tok = emu.AppToken(t)
	delta, _ := follow(t, emu, "/api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime=2026-11-20T06:00:00Z", tok)
	// Rows of end-of-support software have no CVE, hence no CVSS score
	// either: hold them to Microsoft's CVE-less rows.
	withCVE := func(r map[string]any) bool { return r["cveId"] != nil }
	var cveRows, eosRows []map[string]any
	for _, r := range delta {
		if withCVE(r) {
			cveRows = append(cveRows, r)
		} else {
			eosRows = append(eosRows, r)
		}
	}
	checkShape(t, "DeltaAssetVulnerability", append(fixtureRecords(t, "docs/export-vulns-delta-by-machine.json", withCVE),
		fixtureRecords(t, "peers/elastic-integrations/vulnerability_export_rows.ndjson", camelCase)...), cveRows)
	if len(eosRows) > 0 {
		checkShape(t, "DeltaAssetVulnerability without CVE", fixtureRecords(t, "docs/export-vulns-delta-by-machine.json", func(r map[string]any) bool { return !withCVE(r) }), eosRows)
	}
}

func TestPrepareExports(t *testing.T) {
	emu, _, _ := newTVMEmu(t, 100, emulatortest.WithVulnsPerMachine(20))
	resp, body := emu.Do(t, "POST", "/_emulator/exports", "", "")
	var got struct {
		Rows map[string]int `json:"rows"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	want := emu.TenantCounts(t)
	if got.Rows["vulnerabilities"] != want["vulnerabilities"]+want["vulnerabilitiesWithoutCve"] || got.Rows["software"] != want["software"] {
		t.Errorf("prepared %v, tenant %v", got.Rows, want)
	}
	if v := want["vulnerabilities"] / 100; v < 10 || v > 30 {
		t.Errorf("%d vulnerabilities per machine asked 20", v)
	}
}
