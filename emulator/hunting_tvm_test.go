package emulator_test

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// The TVM hunting tables, as a live tenant's getschema lists them.
var (
	tvmVulnSchema = []struct{ Name, Type string }{
		{"DeviceId", "String"}, {"DeviceName", "String"}, {"OSPlatform", "String"}, {"OSVersion", "String"},
		{"OSArchitecture", "String"}, {"SoftwareVendor", "String"}, {"SoftwareName", "String"},
		{"SoftwareVersion", "String"}, {"CveId", "String"}, {"VulnerabilitySeverityLevel", "String"},
		{"RecommendedSecurityUpdate", "String"}, {"RecommendedSecurityUpdateId", "String"}, {"CveTags", "Object"},
		{"CveMitigationStatus", "String"}, {"AadDeviceId", "String"},
	}
	tvmInventorySchema = []struct{ Name, Type string }{
		{"DeviceId", "String"}, {"DeviceName", "String"}, {"OSPlatform", "String"}, {"OSVersion", "String"},
		{"OSArchitecture", "String"}, {"SoftwareVendor", "String"}, {"SoftwareName", "String"},
		{"SoftwareVersion", "String"}, {"EndOfSupportStatus", "String"}, {"EndOfSupportDate", "DateTime"},
		{"ProductCodeCpe", "String"},
	}
)

// tvmHuntEmu is a small tenant whose TVM tables fit a hunting answer.
func tvmHuntEmu(t *testing.T) (*emulatortest.Emu, string) {
	t.Helper()
	emu := huntingEmu(t, 40)
	return emu, emu.AppToken(t)
}

func huntCount(t *testing.T, emu *emulatortest.Emu, tok, query string) int {
	t.Helper()
	r := mustHunt(t, emu, tok, query)
	if len(r.Results) != 1 {
		t.Fatalf("%s: %d rows", query, len(r.Results))
	}
	return int(r.Results[0]["Count"].(float64))
}

// rowKey is the export's unique combination of a row.
func rowKey(r map[string]any, device, vendor, name, version, cve string) string {
	s := func(k string) string { v, _ := r[k].(string); return v }
	return strings.Join([]string{s(device), s(vendor), s(name), s(version), s(cve)}, "|")
}

// TestTVMHuntingTablesMatchTheTenant: the tables hold exactly the rows the
// tenant counts and the JSON exports serve (the vulnerabilities without the
// end-of-support rows, which have no CVE), with the documented schema.
func TestTVMHuntingTablesMatchTheTenant(t *testing.T) {
	emu, tok := tvmHuntEmu(t)
	want := emu.TenantCounts(t)
	if want["vulnerabilities"] == 0 || want["vulnerabilitiesWithoutCve"] == 0 || want["software"] == 0 {
		t.Fatalf("tenant too small to test: %v", want)
	}
	if got := huntCount(t, emu, tok, "DeviceTvmSoftwareVulnerabilities | count"); got != want["vulnerabilities"] {
		t.Errorf("DeviceTvmSoftwareVulnerabilities: %d rows, tenant says %d", got, want["vulnerabilities"])
	}
	if got := huntCount(t, emu, tok, "DeviceTvmSoftwareInventory | count"); got != want["software"] {
		t.Errorf("DeviceTvmSoftwareInventory: %d rows, tenant says %d", got, want["software"])
	}

	vulns := mustHunt(t, emu, tok, "DeviceTvmSoftwareVulnerabilities")
	if diff := cmp.Diff(tvmVulnSchema, vulns.Schema); diff != "" {
		t.Errorf("vulnerabilities schema (-want +got):\n%s", diff)
	}
	exported, _ := follow(t, emu, "/api/machines/SoftwareVulnerabilitiesByMachine", tok)
	wantVulns := map[string]map[string]any{}
	for _, r := range exported {
		if r["cveId"] != nil {
			wantVulns[rowKey(r, "deviceId", "softwareVendor", "softwareName", "softwareVersion", "cveId")] = r
		}
	}
	gotVulns := map[string]bool{}
	for _, r := range vulns.Results {
		k := rowKey(r, "DeviceId", "SoftwareVendor", "SoftwareName", "SoftwareVersion", "CveId")
		gotVulns[k] = true
		e, ok := wantVulns[k]
		if !ok {
			t.Errorf("row %s is not in the export", k)
			continue
		}
		for col, field := range map[string]string{"OSPlatform": "osPlatform", "OSVersion": "osVersion", "OSArchitecture": "osArchitecture",
			"VulnerabilitySeverityLevel": "vulnerabilitySeverityLevel", "RecommendedSecurityUpdate": "recommendedSecurityUpdate"} {
			if ev, _ := e[field].(string); r[col] != ev {
				t.Errorf("%s: %s %q, export %s %q", k, col, r[col], field, ev)
			}
		}
		if r["DeviceName"] != strings.ToLower(e["deviceName"].(string)) {
			t.Errorf("%s: DeviceName %q, export %q", k, r["DeviceName"], e["deviceName"])
		}
		if tags, ok := r["CveTags"].([]any); !ok {
			t.Errorf("%s: CveTags %#v, want an array", k, r["CveTags"])
		} else if len(tags) > 0 && !slices.Equal(tags, []any{"ZeroDay", "NoSecurityUpdate"}) {
			t.Errorf("%s: CveTags %v", k, tags)
		}
		if r["CveMitigationStatus"] != "" {
			t.Errorf("%s: CveMitigationStatus %q", k, r["CveMitigationStatus"])
		}
	}
	if len(gotVulns) != len(vulns.Results) || len(gotVulns) != len(wantVulns) {
		t.Errorf("%d hunting rows (%d distinct), %d export rows with a CVE", len(vulns.Results), len(gotVulns), len(wantVulns))
	}

	inv := mustHunt(t, emu, tok, "DeviceTvmSoftwareInventory")
	if diff := cmp.Diff(tvmInventorySchema, inv.Schema); diff != "" {
		t.Errorf("inventory schema (-want +got):\n%s", diff)
	}
	exportedInv, _ := follow(t, emu, "/api/machines/SoftwareInventoryByMachine", tok)
	wantInv := map[string]map[string]any{}
	for _, r := range exportedInv {
		wantInv[rowKey(r, "deviceId", "softwareVendor", "softwareName", "softwareVersion", "")] = r
	}
	eos := 0
	for _, r := range inv.Results {
		k := rowKey(r, "DeviceId", "SoftwareVendor", "SoftwareName", "SoftwareVersion", "")
		e, ok := wantInv[k]
		if !ok {
			t.Errorf("inventory row %s is not in the export", k)
			continue
		}
		status := e["endOfSupportStatus"].(string)
		if status == "None" {
			status = ""
		} else {
			eos++
		}
		if r["EndOfSupportStatus"] != status {
			t.Errorf("%s: EndOfSupportStatus %q, export %q", k, r["EndOfSupportStatus"], e["endOfSupportStatus"])
		}
		if (r["EndOfSupportDate"] == nil) != (e["endOfSupportDate"] == nil) {
			t.Errorf("%s: EndOfSupportDate %v, export %v", k, r["EndOfSupportDate"], e["endOfSupportDate"])
		}
		// CPE 2.3 quotes other characters than letters, digits, _ - and . ("notepad\+\+").
		cpe, _ := r["ProductCodeCpe"].(string)
		if !strings.HasPrefix(cpe, "cpe:2.3:") || !strings.Contains(strings.ReplaceAll(cpe, `\`, ""),
			":"+e["softwareVendor"].(string)+":"+e["softwareName"].(string)+":"+e["softwareVersion"].(string)+":") {
			t.Errorf("%s: ProductCodeCpe %q", k, cpe)
		}
	}
	if len(inv.Results) != len(wantInv) || eos == 0 {
		t.Errorf("%d inventory rows (%d end of support), %d in the export", len(inv.Results), eos, len(wantInv))
	}
	if n := huntCount(t, emu, tok, "DeviceTvmSoftwareInventory | where isnotempty(EndOfSupportStatus) | count"); n != eos {
		t.Errorf("isnotempty(EndOfSupportStatus): %d rows, want %d", n, eos)
	}
}

// TestTVMHuntingByCVE: the machines a CVE's rows name are those of its
// machineReferences, and the leading where clauses that let the table skip
// machines never change a result.
func TestTVMHuntingByCVE(t *testing.T) {
	emu, tok := tvmHuntEmu(t)
	var cves tvmPage
	getJSON(t, emu, "/api/vulnerabilities?$orderby="+url.QueryEscape("exposedMachines desc")+"&$top=3", tok, &cves)
	if len(cves.Value) != 3 || cves.Value[2]["exposedMachines"].(float64) < 2 {
		t.Fatalf("the most exposing CVEs: %v", cves.Value)
	}
	for _, c := range cves.Value {
		id := c["id"].(string)
		refs, _ := follow(t, emu, "/api/vulnerabilities/"+id+"/machineReferences", tok)
		var want []string
		for _, r := range refs {
			want = append(want, r["id"].(string))
		}
		r := mustHunt(t, emu, tok, fmt.Sprintf(`DeviceTvmSoftwareVulnerabilities | where CveId == %q | project DeviceId`, id))
		got := map[string]bool{}
		for _, row := range r.Results {
			got[row["DeviceId"].(string)] = true
		}
		if diff := cmp.Diff(sortedStrings(want), slices.Sorted(maps.Keys(got))); diff != "" {
			t.Errorf("%s: machines (-machineReferences +hunting):\n%s", id, diff)
		}
		// One machine's rows, found by machine first (the table skips the
		// others) or by a full scan, are the same.
		dev := want[0]
		byDevice := mustHunt(t, emu, tok, fmt.Sprintf(`DeviceTvmSoftwareVulnerabilities | where DeviceId == %q | where CveId == %q`, dev, id))
		scanned := mustHunt(t, emu, tok, fmt.Sprintf(`DeviceTvmSoftwareVulnerabilities | where CveId == %q | where DeviceId == %q`, id, dev))
		if len(byDevice.Results) == 0 || !cmp.Equal(byDevice.Results, scanned.Results) {
			t.Errorf("%s on %s: %d rows by device, %d by scan", id, dev, len(byDevice.Results), len(scanned.Results))
		}
	}
}

func sortedStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestTVMHuntingSummaries: dcount by software over the hunting table agrees
// with the export, and take stops early.
func TestTVMHuntingSummaries(t *testing.T) {
	emu, tok := tvmHuntEmu(t)
	exported, _ := follow(t, emu, "/api/machines/SoftwareVulnerabilitiesByMachine", tok)
	machines := map[string]map[string]bool{}
	for _, r := range exported {
		if r["cveId"] == nil {
			continue
		}
		name := r["softwareName"].(string)
		if machines[name] == nil {
			machines[name] = map[string]bool{}
		}
		machines[name][r["deviceId"].(string)] = true
	}
	want := map[string]float64{}
	for name, ms := range machines {
		want[name] = float64(len(ms))
	}
	r := mustHunt(t, emu, tok, "DeviceTvmSoftwareVulnerabilities | summarize Devices = dcount(DeviceId) by SoftwareName")
	got := map[string]float64{}
	for _, row := range r.Results {
		got[row["SoftwareName"].(string)] = row["Devices"].(float64)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("machines by software (-export +hunting):\n%s", diff)
	}
	inv := mustHunt(t, emu, tok, `DeviceTvmSoftwareInventory | where OSPlatform startswith "Windows" | take 7`)
	if len(inv.Results) != 7 {
		t.Errorf("take 7: %d rows", len(inv.Results))
	}
	for _, row := range inv.Results {
		if !strings.HasPrefix(row["OSPlatform"].(string), "Windows") {
			t.Errorf("row %v does not match", row)
		}
	}
}
