package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mdebridge/mdebridge"
)

// exposureTests are the conformance tests of mdebridge.ExposureStore.
var exposureTests = map[string]func(*testing.T, Opener){
	"VulnerabilityLoad":        testVulnerabilityLoad,
	"VulnerabilityLoadAtomic":  testVulnerabilityLoadAtomic,
	"VulnerabilityChanges":     testVulnerabilityChanges,
	"SoftwareLoad":             testSoftwareLoad,
	"VulnerabilityCatalogue":   testVulnerabilityCatalogue,
	"VulnerabilityFilters":     testVulnerabilityFilters,
	"EveryMachineGetsItsEdge":  testEveryMachineGetsItsEdge,
	"MachineNotInTheInventory": testMachineNotInTheInventory,
}

var products = []struct{ vendor, name, version string }{
	{"google", "chrome", "131.0.6778.205"}, {"microsoft", "windows_11", "10.0.26100.2605"}, {"mozilla", "firefox", "133.0.3"},
	{"7-zip", "7-zip", "24.08"}, {"red_hat", "openssl", "1:3.0.7-28.el9_4"},
}

var severities = []string{"Low", "Medium", "High", "Critical"}

// VulnRow builds export row k of machine i (product k%5, CVE k, or no CVE
// when k is 99).
func VulnRow(i, k int, mods ...func(*mdebridge.MachineVulnerability)) mdebridge.MachineVulnerability {
	p := products[k%len(products)]
	m := Machine(i)
	cvss := float64(20+k*7%80) / 10
	up := true
	r := mdebridge.MachineVulnerability{
		DeviceID: m.ID, DeviceName: m.ComputerDNSName, RBACGroupName: m.RBACGroupName, RBACGroupID: m.RBACGroupID,
		OSPlatform: m.OSPlatform, OSVersion: "10.0.26100.2605", OSArchitecture: "x64",
		SoftwareVendor: p.vendor, SoftwareName: p.name, SoftwareVersion: p.version,
		CVEID: fmt.Sprintf("CVE-2026-%d", 1000+k), Severity: severities[k%4], CVSSScore: &cvss,
		RecommendedSecurityUpdate: "November 2026 Security Updates", RecommendedSecurityUpdateID: fmt.Sprint(5050000 + k%3),
		RecommendedSecurityUpdateURL: fmt.Sprintf("https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB%d", 5050000+k%3),
		DiskPaths:                    []string{`C:\Program Files\` + p.name + `\app.exe`}, RegistryPaths: []string{},
		FirstSeen: t0.Add(-time.Duration(k) * time.Hour), LastSeen: t0,
		ExploitabilityLevel: []string{"NoExploit", "ExploitIsPublic"}[k%2], RecommendationReference: "va-_-" + p.vendor + "-_-" + p.name,
		SecurityUpdateAvailable: &up,
	}
	if k == 99 {
		r.CVEID, r.Severity, r.CVSSScore, r.ExploitabilityLevel = "", "", nil, "NoExploit"
		r.RecommendedSecurityUpdate, r.RecommendedSecurityUpdateID, r.RecommendedSecurityUpdateURL = "", "", ""
	}
	r.ID = r.DeviceID + "_" + r.SoftwareVendor + "_" + r.SoftwareName + "_" + r.SoftwareVersion + "_" + r.CVEID
	for _, f := range mods {
		f(&r)
	}
	return r
}

// vulnRows is machines × ks.
func vulnRows(machines int, ks ...int) []mdebridge.MachineVulnerability {
	var out []mdebridge.MachineVulnerability
	for i := range machines {
		for _, k := range ks {
			out = append(out, VulnRow(i, k))
		}
	}
	return out
}

func mustLoad(t *testing.T, s mdebridge.Store, run int64, rows ...[]mdebridge.MachineVulnerability) int {
	t.Helper()
	l, err := s.BeginVulnerabilityLoad(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := l.Add(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := l.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var ignoreOrder = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func testVulnerabilityLoad(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustUpsert(t, s, 1, machines(10))
	rows := vulnRows(10, 1, 2, 3, 99)
	// Rows keep everything the export said, including what the store does
	// not model.
	rows[0].Extra = []byte(`{"cveBatchTitle":"Microsoft November 2026 Security Updates","cveMitigationStatus":null}`)
	rows[1].ID = "custom-id-format"
	no := false
	rows[2].SecurityUpdateAvailable = &no
	rows[3].SecurityUpdateAvailable = nil
	if n := mustLoad(t, s, 1, rows[:20], rows[20:], rows[:5]); n != 40 {
		t.Fatalf("commit says %d rows, want 40 (a row handed twice is stored once)", n)
	}
	got, err := s.MachineVulnerabilities(t.Context(), rows[0].DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	want := rows[:4]
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b mdebridge.MachineVulnerability) bool { return a.CVEID < b.CVEID }),
		cmpopts.EquateEmpty(), ignoreOrder); diff != "" {
		t.Errorf("machine 0 round trip (-want +got):\n%s", diff)
	}
	if got[0].CVEID != "CVE-2026-1003" || got[len(got)-1].CVEID != "" {
		t.Errorf("not most severe first: %s … %s", got[0].CVEID, got[len(got)-1].CVEID)
	}
	c, err := s.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c["machine_vulnerabilities"] != 30 || c["machine_vulnerabilities_without_cve"] != 10 || c["vulnerable_machines"] != 10 {
		t.Errorf("counts %v", c)
	}
	e, err := s.MachineExposure(t.Context(), strings.ToUpper(rows[0].DeviceID))
	if err != nil {
		t.Fatal(err)
	}
	if e.CVEs != 3 || e.Vulnerabilities["Critical"] != 1 || e.Vulnerabilities["High"] != 1 || e.Vulnerabilities["Medium"] != 1 ||
		e.MostSevere == nil || e.MostSevere.CVEID != "CVE-2026-1003" || e.VulnerableSoftware != 3 {
		t.Errorf("exposure %+v", e)
	}
	if e, err := s.MachineExposure(t.Context(), "no-such-device"); err != nil || e.CVEs != 0 || e.MostSevere != nil {
		t.Errorf("unknown device: %+v %v", e, err)
	}
}

func testVulnerabilityLoadAtomic(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustLoad(t, s, 1, vulnRows(5, 1, 2))
	// A load that fails half way, or is never committed, changes nothing.
	l, err := s.BeginVulnerabilityLoad(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Add(t.Context(), vulnRows(5, 7)); err != nil {
		t.Fatal(err)
	}
	if err := l.Abort(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err = s.BeginVulnerabilityLoad(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	l.Add(t.Context(), vulnRows(5, 8))
	// (this one is abandoned: the next load starts afresh)
	vs, total, err := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{})
	if err != nil || total != 2 || vs[0].Machines != 5 {
		t.Fatalf("after aborted loads: %d CVEs %v %v", total, vs, err)
	}
	// A committed load replaces everything.
	mustLoad(t, s, 4, vulnRows(3, 9))
	vs, total, err = s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{})
	if err != nil || total != 1 || vs[0].ID != "CVE-2026-1009" || vs[0].Machines != 3 {
		t.Fatalf("after a new load: %d %+v %v", total, vs, err)
	}
	if c, _ := s.Counts(t.Context()); c["machine_vulnerabilities"] != 3 || c["vulnerable_machines"] != 3 {
		t.Errorf("counts %v", c)
	}
	if err := l.Abort(t.Context()); err != nil {
		t.Errorf("abort after a later load: %v", err)
	}
	if vs, _, _ := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{}); len(vs) != 1 {
		t.Errorf("a stale abort dropped the live rows: %v", vs)
	}
}

func testVulnerabilityChanges(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustLoad(t, s, 1, vulnRows(4, 1, 2))
	at := func(h int) func(*mdebridge.MachineVulnerability) {
		return func(r *mdebridge.MachineVulnerability) { r.EventTimestamp = t0.Add(time.Duration(h) * time.Hour) }
	}
	status := func(st string) func(*mdebridge.MachineVulnerability) {
		return func(r *mdebridge.MachineVulnerability) { r.Status = st }
	}
	changes := []mdebridge.MachineVulnerability{
		VulnRow(0, 1, status("Fixed"), at(1)),                                      // fixed
		VulnRow(1, 5, status("New"), at(1)),                                        // found
		VulnRow(2, 6, status("New"), at(1)), VulnRow(2, 6, status("Fixed"), at(3)), // found, then fixed
		VulnRow(3, 2, status("Updated"), at(2), func(r *mdebridge.MachineVulnerability) { r.ExploitabilityLevel = "ExploitIsInKit" }),
		VulnRow(7, 1, status("New"), at(2)), // a machine not seen before
	}
	// The service need not list changes in time order.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(changes), func(i, j int) { changes[i], changes[j] = changes[j], changes[i] })
	got, err := s.ApplyVulnerabilityChanges(t.Context(), 2, changes)
	if err != nil {
		t.Fatal(err)
	}
	if want := (mdebridge.ChangeCounts{Added: 2, Removed: 1, Updated: 1}); got != want {
		t.Errorf("changes %+v, want %+v", got, want)
	}
	again, err := s.ApplyVulnerabilityChanges(t.Context(), 3, changes)
	if err != nil || again.Added != 0 || again.Removed != 0 {
		t.Errorf("applying again: %+v %v", again, err)
	}
	count := func(dev int) int {
		rows, err := s.MachineVulnerabilities(t.Context(), Machine(dev).ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if count(0) != 1 || count(1) != 3 || count(2) != 2 || count(7) != 1 {
		t.Errorf("rows per machine %d %d %d %d", count(0), count(1), count(2), count(7))
	}
	d, err := s.FindVulnerability(t.Context(), "cve-2026-1002", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range d.Exposed {
		if m.DeviceID == Machine(3).ID && m.ExploitabilityLevel != "ExploitIsInKit" {
			t.Errorf("update not applied: %+v", m)
		}
	}
	if c, _ := s.Counts(t.Context()); c["machine_vulnerabilities"] != 8+2-1 || c["vulnerable_machines"] != 5 {
		t.Errorf("counts after changes %v", c)
	}
	// The figures the changes kept are those a full load of the same rows
	// computes.
	snapshot := func() (any, mdebridge.Counts) {
		vs, _, err := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{})
		if err != nil {
			t.Fatal(err)
		}
		sw, _, err := s.FindSoftware(t.Context(), mdebridge.SoftwareFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var versions []mdebridge.SoftwareDetail
		for _, p := range sw {
			d, err := s.FindSoftwareProduct(t.Context(), p.ID)
			if err != nil {
				t.Fatal(err)
			}
			versions = append(versions, *d)
		}
		c, _ := s.Counts(t.Context())
		return []any{vs, sw, versions}, c
	}
	kept, keptCounts := snapshot()
	var all []mdebridge.MachineVulnerability
	for _, dev := range []int{0, 1, 2, 3, 7} {
		rows, _ := s.MachineVulnerabilities(t.Context(), Machine(dev).ID)
		all = append(all, rows...)
	}
	mustLoad(t, s, 5, all)
	reloaded, reloadedCounts := snapshot()
	if diff := cmp.Diff(reloaded, kept); diff != "" {
		t.Errorf("figures after changes differ from a full load's (-full +changes):\n%s", diff)
	}
	for _, k := range []string{"machine_vulnerabilities", "machine_vulnerabilities_without_cve", "vulnerable_machines", "cves_exposed", "software_products"} {
		if keptCounts[k] != reloadedCounts[k] {
			t.Errorf("%s: %d after changes, %d after a full load", k, keptCounts[k], reloadedCounts[k])
		}
	}
	bad := []mdebridge.MachineVulnerability{VulnRow(0, 1, status("Maybe"))}
	if _, err := s.ApplyVulnerabilityChanges(t.Context(), 4, bad); err == nil || !strings.Contains(err.Error(), "Maybe") {
		t.Errorf("unknown status: %v", err)
	}
}

func softwareRow(i, k int) mdebridge.SoftwareInstall {
	p := products[k%len(products)]
	m := Machine(i)
	r := mdebridge.SoftwareInstall{DeviceID: m.ID, DeviceName: m.ComputerDNSName, RBACGroupName: m.RBACGroupName, OSPlatform: m.OSPlatform,
		SoftwareVendor: p.vendor, SoftwareName: p.name, SoftwareVersion: p.version, NumberOfWeaknesses: k, FirstSeen: t0.Add(-time.Hour),
		DiskPaths: []string{}, RegistryPaths: []string{`HKEY_LOCAL_MACHINE\SOFTWARE\` + p.name}, EndOfSupportStatus: "None"}
	if k%len(products) == 3 {
		r.EndOfSupportStatus, r.EndOfSupportDate = "EOS Software", time.Date(2025, 10, 14, 0, 0, 0, 0, time.UTC)
	}
	return r
}

func testSoftwareLoad(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustLoad(t, s, 1, vulnRows(6, 1, 6))
	l, err := s.BeginSoftwareLoad(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var rows []mdebridge.SoftwareInstall
	for i := range 8 {
		for k := range 5 {
			if i < 6 || k < 2 {
				rows = append(rows, softwareRow(i, k))
			}
		}
	}
	l.Add(t.Context(), rows[:13])
	l.Add(t.Context(), rows[13:])
	if n, err := l.Commit(t.Context()); err != nil || n != len(rows) {
		t.Fatalf("commit: %d %v", n, err)
	}
	got, err := s.MachineSoftware(t.Context(), Machine(0).ID)
	if err != nil || len(got) != 5 {
		t.Fatalf("machine software: %d %v", len(got), err)
	}
	if diff := cmp.Diff(softwareRow(0, 1), got[2], cmpopts.EquateEmpty()); diff != "" { // sorted by vendor
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	list, total, err := s.FindSoftware(t.Context(), mdebridge.SoftwareFilter{})
	if err != nil || total != 5 {
		t.Fatalf("software list: %d %v", total, err)
	}
	// microsoft-_-windows_11 carries CVE-2026-1001 and CVE-2026-1006 on 6 machines.
	if list[0].ID != "microsoft-_-windows_11" || list[0].ExposedMachines != 6 || list[0].Weaknesses != 2 || list[0].InstalledMachines != 8 || !list[0].PublicExploit {
		t.Errorf("first product %+v", list[0])
	}
	if _, n, _ := s.FindSoftware(t.Context(), mdebridge.SoftwareFilter{EndOfSupport: true}); n != 1 {
		t.Errorf("end of support: %d", n)
	}
	if _, n, _ := s.FindSoftware(t.Context(), mdebridge.SoftwareFilter{Vulnerable: true}); n != 1 {
		t.Errorf("vulnerable: %d", n)
	}
	if _, n, _ := s.FindSoftware(t.Context(), mdebridge.SoftwareFilter{Machine: Machine(7).ID}); n != 2 {
		t.Errorf("on machine 7: %d", n)
	}
	d, err := s.FindSoftwareProduct(t.Context(), "windows_11")
	if err != nil || len(d.Distributions) != 1 || d.Distributions[0].Installations != 8 || d.Distributions[0].ExposedMachines != 6 || len(d.Vulnerabilities) != 2 {
		t.Fatalf("windows_11: %+v %v", d, err)
	}
	var nf *mdebridge.NotFoundError
	if _, err := s.FindSoftwareProduct(t.Context(), "chromium"); !errors.As(err, &nf) {
		t.Errorf("unknown product: %v", err)
	}
	e, _ := s.MachineExposure(t.Context(), Machine(0).ID)
	if e.Software != 5 || e.EndOfSupport != 1 {
		t.Errorf("exposure %+v", e)
	}
	if c, _ := s.Counts(t.Context()); c["machine_software"] != len(rows) || c["software_products"] != 5 {
		t.Errorf("counts %v", c)
	}
}

func testVulnerabilityCatalogue(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustLoad(t, s, 1, vulnRows(2, 1))
	entry := func(id, sev string, cvss float64, updated time.Time) mdebridge.Vulnerability {
		return mdebridge.Vulnerability{ID: id, Name: id, Severity: sev, CVSSV3: cvss, UpdatedOn: updated, PublishedOn: updated.Add(-time.Hour),
			Description: "desc of " + id, Raw: []byte(fmt.Sprintf(`{"id":%q,"name":%q,"severity":%q,"cvssV3":%v,"description":"desc of %s","exploitTypes":["Remote"]}`, id, id, sev, cvss, id))}
	}
	if err := s.UpsertVulnerabilities(t.Context(), 1, []mdebridge.Vulnerability{
		entry("CVE-2026-1001", "Critical", 9.8, t0), entry("CVE-2026-7777", "Low", 2.1, t0.Add(time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LatestCatalogueUpdate(t.Context()); err != nil || !last.Equal(t0.Add(time.Hour)) {
		t.Errorf("latest update %v %v", last, err)
	}
	d, err := s.FindVulnerability(t.Context(), "CVE-2026-1001", 0)
	if err != nil || d.Description != "desc of CVE-2026-1001" || len(d.Exposed) != 2 || len(d.ExploitTypes) != 1 || !d.InCatalogue {
		t.Fatalf("detail %+v %v", d, err)
	}
	if _, total, _ := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{IncludeUnseen: true}); total != 2 {
		t.Errorf("with unseen catalogue entries: %d", total)
	}
	if c, _ := s.Counts(t.Context()); c["cves"] != 2 {
		t.Errorf("counts %v", c)
	}
	s.UpsertVulnerabilities(t.Context(), 2, []mdebridge.Vulnerability{entry("CVE-2026-1001", "Critical", 9.8, t0)})
	if n, err := s.RetireVulnerabilitiesNotSeen(t.Context(), 2); err != nil || n != 1 {
		t.Errorf("retired %d %v", n, err)
	}
	var nf *mdebridge.NotFoundError
	if _, err := s.FindVulnerability(t.Context(), "CVE-2026-100", 0); !errors.As(err, &nf) || len(nf.Near) == 0 {
		t.Errorf("near matches: %v", err)
	}
}

func testVulnerabilityFilters(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustLoad(t, s, 1, vulnRows(6, 0, 1, 2, 3, 4, 5, 6, 7))
	tests := []struct {
		f    mdebridge.VulnerabilityFilter
		want int
	}{
		{mdebridge.VulnerabilityFilter{}, 8},
		{mdebridge.VulnerabilityFilter{Severity: "high"}, 4},
		{mdebridge.VulnerabilityFilter{Severity: "Critical"}, 2},
		{mdebridge.VulnerabilityFilter{MinCVSS: 6}, 2},
		{mdebridge.VulnerabilityFilter{ExploitOnly: true}, 4},
		{mdebridge.VulnerabilityFilter{Software: "google-_-chrome"}, 2},
		{mdebridge.VulnerabilityFilter{Software: "chrome"}, 2},
		{mdebridge.VulnerabilityFilter{CVE: "cve-2026-100"}, 8},
		{mdebridge.VulnerabilityFilter{CVE: "CVE-2026-1003"}, 1},
		{mdebridge.VulnerabilityFilter{Machine: Machine(0).ID}, 8},
		{mdebridge.VulnerabilityFilter{Machine: "unknown"}, 0},
		{mdebridge.VulnerabilityFilter{Severity: "High", ExploitOnly: true}, 2},
	}
	for _, tt := range tests {
		vs, total, err := s.FindVulnerabilities(t.Context(), tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if total != tt.want || len(vs) != tt.want {
			t.Errorf("%+v: %d (%d listed), want %d", tt.f, total, len(vs), tt.want)
		}
		for i := 1; i < len(vs); i++ {
			if mdebridge.SeverityRank(vs[i].Severity) > mdebridge.SeverityRank(vs[i-1].Severity) {
				t.Errorf("%+v: not most severe first", tt.f)
			}
		}
	}
	if _, _, err := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{Severity: "Dire"}); err == nil {
		t.Error("unknown severity accepted")
	}
	page, total, _ := s.FindVulnerabilities(t.Context(), mdebridge.VulnerabilityFilter{Offset: 6, Limit: 5})
	if total != 8 || len(page) != 2 {
		t.Errorf("paging: %d of %d", len(page), total)
	}
}

// JupiterOne keys vulnerability findings by CVE alone and so keeps the
// edge of only the first machine that has a CVE. Every machine must keep
// its own.
func testEveryMachineGetsItsEdge(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	const n = 300
	mustUpsert(t, s, 1, machines(n))
	mustLoad(t, s, 1, vulnRows(n, 4))
	d, err := s.FindVulnerability(t.Context(), "CVE-2026-1004", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range d.Exposed {
		seen[m.DeviceID] = true
		if !m.InInventory {
			t.Errorf("%s not in inventory", m.DeviceID)
		}
	}
	if len(seen) != n || d.Machines != n {
		t.Fatalf("%d machines carry CVE-2026-1004 (summary says %d), want %d", len(seen), d.Machines, n)
	}
	for i := range n {
		if e, _ := s.MachineExposure(t.Context(), Machine(i).ID); e.CVEs != 1 {
			t.Fatalf("machine %d: %d CVEs", i, e.CVEs)
		}
	}
}

func testMachineNotInTheInventory(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustUpsert(t, s, 1, machines(2))
	mustLoad(t, s, 1, vulnRows(3, 1))
	d, err := s.FindVulnerability(t.Context(), "CVE-2026-1001", 0)
	if err != nil || len(d.Exposed) != 3 {
		t.Fatalf("%v %v", d, err)
	}
	unknown := 0
	for _, m := range d.Exposed {
		if !m.InInventory {
			unknown++
			if m.DeviceName != Machine(2).ComputerDNSName {
				t.Errorf("the export's name is lost: %+v", m)
			}
		}
	}
	if unknown != 1 {
		t.Errorf("%d machines not in the inventory, want 1", unknown)
	}
}
