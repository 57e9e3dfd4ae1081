package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/app"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// tvmClock is a settable emulator clock for the exposure tests.
type tvmClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tvmClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *tvmClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTVMEmulator(t *testing.T, machines int, opts ...emulatortest.Option) (*emulatortest.Emu, *tvmClock) {
	t.Helper()
	// A minute into one of the service's 6-hourly export snapshots, so that
	// a test's half hour later is the same snapshot whatever the time of day.
	clk := &tvmClock{t: time.Now().UTC().Truncate(6 * time.Hour).Add(time.Minute)}
	return emulatortest.New(t, append([]emulatortest.Option{emulatortest.WithMachines(machines), emulatortest.WithNow(clk.now)}, opts...)...), clk
}

// storedAsTenant checks that the store holds exactly the tenant's rows.
func storedAsTenant(t *testing.T, c *cli, emu *emulatortest.Emu) {
	t.Helper()
	want, got := emu.TenantCounts(t), c.counts()
	for _, k := range [][2]string{
		{"vulnerabilities", "machine_vulnerabilities"}, {"vulnerabilitiesWithoutCve", "machine_vulnerabilities_without_cve"},
		{"software", "machine_software"}, {"cves", "cves"}, {"vulnerableMachines", "vulnerable_machines"}, {"machines", "machines"},
	} {
		if want[k[0]] != got[k[1]] {
			t.Errorf("%s: the store holds %d, the tenant %d", k[1], got[k[1]], want[k[0]])
		}
	}
}

// mdeCalls counts the MDE API calls the emulator answered: blob downloads
// and token requests are not MDE calls.
func mdeCalls(emu *emulatortest.Emu) (mde int, byRoute map[string]int) {
	byRoute = map[string]int{}
	for k, n := range emu.Stats().Calls {
		if strings.Contains(k, " /api/") {
			mde += n
			byRoute[k] = n
		}
	}
	return mde, byRoute
}

// TestExposureAtScale is issue 3's done-when: a 20,000-machine tenant syncs
// exactly the vulnerability rows, software rows and logon users the tenant
// holds, in at most 15 MDE calls; an incremental cycle then costs a handful.
func TestExposureAtScale(t *testing.T) {
	volume(t)
	emu, clk := newTVMEmulator(t, 20000, emulatortest.WithVulnsPerMachine(50))
	c := newCLI(t, emu, emu.App)
	s, r := c.sync()
	if r.code != 0 || s.Status != "succeeded" {
		t.Fatalf("sync: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	storedAsTenant(t, c, emu)
	want, got := emu.TenantCounts(t), c.counts()
	if got["machine_logon_users"] != want["machineLogonUsers"] || got["logon_users"] != want["logonUsers"] || got["logon_users"] == 0 {
		t.Errorf("logon users: the store holds %d edges of %d accounts, the tenant %d of %d",
			got["machine_logon_users"], got["logon_users"], want["machineLogonUsers"], want["logonUsers"])
	}
	calls, by := mdeCalls(emu)
	if calls > 15 {
		t.Errorf("%d MDE calls, want at most 15: %v", calls, by)
	}
	if by["GET /api/machines/SoftwareVulnerabilitiesExport"] != 1 || by["GET /api/machines/SoftwareInventoryExport"] != 1 {
		t.Errorf("calls %v", by)
	}
	t.Logf("full sync: %d MDE calls %v, %d rows", calls, by, c.counts()["machine_vulnerabilities"])

	// An hour later, nothing new: a few calls, no rows moved.
	emu.ResetStats()
	clk.advance(30 * time.Minute)
	s, r = c.sync()
	if r.code != 0 {
		t.Fatalf("incremental sync: exit %d %+v", r.code, s)
	}
	mine := 0
	for _, st := range s.Steps {
		if st.Name == "cves" || st.Name == "vulnerabilities" || st.Name == "software" {
			for route, n := range st.CallsByAPI {
				if strings.Contains(route, " /api/") { // blob downloads are counted apart
					mine += n
				}
			}
		}
	}
	if _, by = mdeCalls(emu); mine > 5 {
		t.Errorf("incremental cycle: %d calls of the exposure steps, want at most 5: %v", mine, by)
	}
	storedAsTenant(t, c, emu)
}

// Changes between full exports come from the delta API, and leave the
// store exactly as the tenant.
func TestExposureDeltaReachesTheTenant(t *testing.T) {
	emu, clk := newTVMEmulator(t, 100)
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync")
	storedAsTenant(t, c, emu)
	for day := range 3 {
		clk.advance(7 * time.Hour) // past the next 6-hourly snapshot
		emu.ResetStats()
		s, r := c.sync()
		if r.code != 0 {
			t.Fatalf("day %d: exit %d %+v", day, r.code, s)
		}
		_, by := mdeCalls(emu)
		if by["GET /api/machines/SoftwareVulnerabilityChangesByMachine"] != 1 || by["GET /api/machines/SoftwareVulnerabilitiesExport"] != 0 {
			t.Errorf("step %d: calls %v, want the delta API and no full export", day, by)
		}
		for _, st := range s.Steps {
			if st.Name == "vulnerabilities" && st.Items+st.Retired == 0 {
				t.Errorf("step %d: the delta changed nothing in 7 hours: %+v", day, st)
			}
		}
		storedAsTenant(t, c, emu)
	}
	// A --full sync exports everything again.
	emu.ResetStats()
	c.sync("--full")
	if _, by := mdeCalls(emu); by["GET /api/machines/SoftwareVulnerabilitiesExport"] != 1 {
		t.Errorf("--full: calls %v", by)
	}
	storedAsTenant(t, c, emu)
}

// Each bad download gets a retry, a resume or a renewal; the data arrives
// whole. A file that stays broken fails the step with its name, and the
// rows of the last good sync stay.
func TestExposureBadDownloads(t *testing.T) {
	emu, _ := newTVMEmulator(t, 150, emulatortest.WithExportFileMachines(60), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	blob := "GET /tvm-export/{date}/{time}/{kind}/json/{org}/{file}"
	for _, tc := range []struct {
		name   string
		faults []emulator.Fault
	}{
		{"a transfer cut short", []emulator.Fault{{Route: blob, TruncateBody: true, Count: 2}}},
		{"a link that expires mid-download", []emulator.Fault{{Route: blob, Status: 403, Count: 1, Skip: 1}, {Route: blob, TruncateBody: true, Count: 1}}},
		{"an empty 200 download", []emulator.Fault{{Route: blob, Status: 200, Count: 1}}},
		{"a corrupt file", []emulator.Fault{{Route: blob, MalformedBody: true, Count: 1}}},
		{"blob storage busy", []emulator.Fault{{Route: blob, Status: 503, Count: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t, emu, emu.App)
			emu.ClearFaults()
			for _, f := range tc.faults {
				if _, err := emu.AddFault(f); err != nil {
					t.Fatal(err)
				}
			}
			s, r := c.sync("--full", "--step", "vulnerabilities", "--step", "software")
			if r.code != 0 {
				t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
			}
			for _, f := range emu.Faults() {
				if f.Hits == 0 {
					t.Errorf("fault %+v never fired", f)
				}
			}
			want, got := emu.TenantCounts(t), c.counts()
			if want["vulnerabilities"] != got["machine_vulnerabilities"] || want["software"] != got["machine_software"] {
				t.Errorf("stored %v, the tenant holds %v", got, want)
			}
		})
	}
	t.Run("a file that stays broken", func(t *testing.T) {
		c := newCLI(t, emu, emu.App)
		emu.ClearFaults()
		c.mustRun("sync", "--step", "vulnerabilities", "--step", "software")
		before := c.counts()
		emu.AddFault(emulator.Fault{Route: blob, Status: 200, Skip: 1})
		s, r := c.sync("--full", "--step", "vulnerabilities", "--step", "software")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1: %+v", r.code, s)
		}
		for _, st := range s.Steps {
			if st.Status != "failed" || !strings.Contains(st.Error, "the download was empty (after 3 downloads)") || !strings.Contains(st.Error, "export file part-0000") {
				t.Errorf("%s step: %+v", st.Name, st)
			}
			if strings.Contains(st.Error, "sig=") {
				t.Errorf("a SAS signature leaked: %s", st.Error)
			}
		}
		emu.ClearFaults()
		if after := c.counts(); after["machine_vulnerabilities"] != before["machine_vulnerabilities"] || after["machine_software"] != before["machine_software"] {
			t.Errorf("rows lost: %v before, %v after", before, after)
		}
	})
}

// When the service refuses exports via files, the JSON export takes over.
func TestExposureFilesRefused(t *testing.T) {
	emu, _ := newTVMEmulator(t, 200)
	emu.AddFault(emulator.Fault{Route: "GET /api/machines/SoftwareVulnerabilitiesExport", Status: 403})
	emu.AddFault(emulator.Fault{Route: "GET /api/machines/SoftwareInventoryExport", Status: 403})
	c := newCLI(t, emu, emu.App)
	c.env["MDEBRIDGE_EXPOSURE_PAGE_SIZE"] = "500"
	s, r := c.sync()
	if r.code != 0 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	_, by := mdeCalls(emu)
	if by["GET /api/machines/SoftwareVulnerabilitiesByMachine"] < 3 || by["GET /api/machines/SoftwareInventoryByMachine"] < 2 {
		t.Errorf("calls %v: the JSON exports were not paged", by)
	}
	storedAsTenant(t, c, emu)
}

// Missing permissions are named per step; what is permitted still syncs,
// and a feature the app is not granted does not fail the sync.
func TestExposureMissingPermission(t *testing.T) {
	emu, _ := newTVMEmulator(t, 50)
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All", "Software.Read.All"}})
	c := newCLI(t, emu, creds)
	s, r := c.sync()
	if r.code != 0 || s.Status != "succeeded" {
		t.Fatalf("exit %d %+v", r.code, s)
	}
	for _, st := range s.Steps {
		switch st.Name {
		case "machines", "software":
			if st.Status != "succeeded" {
				t.Errorf("%s: %+v", st.Name, st)
			}
		case "vulnerabilities", "cves":
			if st.Status != "not-permitted" || !strings.Contains(st.Error, "Vulnerability.Read.All") || !strings.Contains(st.Error, "WindowsDefenderATP") {
				t.Errorf("%s: %+v", st.Name, st)
			}
		}
	}
}

// The commands read like the domain: the worst CVEs, the machines that have
// one (every one of them), a machine's exposure, the software.
func TestExposureCommands(t *testing.T) {
	emu, _ := newTVMEmulator(t, 300)
	// A machine the exports name but the machine inventory does not: the
	// export snapshot is taken, then the machine leaves the tenant.
	emu.TenantCounts(t)
	var ms struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	_, body := emu.Get(t, "/api/machines?$top=1", emu.AppToken(t))
	json.Unmarshal(body, &ms)
	gone := ms.Value[0].ID
	emu.Tenant().RemoveMachine(gone)
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync")

	var vulns []struct {
		ID              string  `json:"id"`
		Severity        string  `json:"severity"`
		CVSSV3          float64 `json:"cvssV3"`
		ExposedMachines int     `json:"exposedMachines"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("vulns", "list", "--severity", "high", "-o", "json")), &vulns); err != nil || len(vulns) == 0 {
		t.Fatalf("vulns list: %v", err)
	}
	for _, v := range vulns {
		if v.Severity != "High" && v.Severity != "Critical" {
			t.Fatalf("--severity high listed %+v", v)
		}
	}
	// The CVE with the most machines: every one of them has its edge.
	table := c.mustRun("vulns", "list")
	if !strings.HasPrefix(table, "CVE") || !strings.Contains(table, "MACHINES") {
		t.Errorf("table:\n%s", table[:min(len(table), 400)])
	}
	var most struct {
		Vulnerability struct {
			ID string `json:"id"`
		} `json:"vulnerability"`
		ExposedMachines []struct {
			DeviceID string `json:"deviceId"`
			CveID    string `json:"cveId"`
		} `json:"exposedMachines"`
	}
	var list []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(c.mustRun("vulns", "list", "-o", "json", "--limit", "1")), &list)
	if err := json.Unmarshal([]byte(c.mustRun("vulns", "show", list[0].ID, "-o", "json")), &most); err != nil {
		t.Fatal(err)
	}
	devices := map[string]bool{}
	for _, m := range most.ExposedMachines {
		devices[m.DeviceID] = true
		if m.CveID != list[0].ID {
			t.Fatalf("row %+v under %s", m, list[0].ID)
		}
	}
	var refs struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	_, body = emu.Get(t, "/api/vulnerabilities/"+list[0].ID+"/machineReferences", emu.AppToken(t))
	json.Unmarshal(body, &refs)
	if len(devices) < 2 || len(devices) != len(refs.Value) {
		t.Errorf("%s: %d machines stored, the tenant lists %d", list[0].ID, len(devices), len(refs.Value))
	}
	// The machine that left the inventory keeps its rows, flagged.
	if out := c.mustRun("vulns", "list", "--machine", gone, "-o", "json"); !strings.Contains(out, `"id"`) {
		t.Errorf("the rows of a machine missing from the inventory were lost")
	}
	var gvs []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(c.mustRun("vulns", "list", "--machine", gone, "-o", "json", "--limit", "1")), &gvs)
	if shown := c.mustRun("vulns", "show", gvs[0].ID, "--limit", "0"); !strings.Contains(shown, gone+" (not in the machine inventory)") {
		t.Errorf("vulns show does not flag the machine missing from the inventory")
	}
	// machines show sums a machine up.
	var m1 []struct {
		Name string `json:"computerDnsName"`
	}
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json")), &m1)
	shownAny := false
	for _, m := range m1[:20] {
		out := c.mustRun("machines", "show", m.Name)
		if strings.Contains(out, "Most severe:") && strings.Contains(out, "Software:") && strings.Contains(out, "CVE") {
			shownAny = true
			break
		}
	}
	if !shownAny {
		t.Error("machines show never showed a machine's vulnerabilities")
	}
	// Software.
	var sw []struct {
		ID                string `json:"id"`
		InstalledMachines int    `json:"installedMachines"`
		ExposedMachines   int    `json:"exposedMachines"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("software", "list", "-o", "json")), &sw); err != nil || len(sw) < 10 {
		t.Fatalf("software list: %v, %d", err, len(sw))
	}
	if show := c.mustRun("software", "show", sw[0].ID); !strings.Contains(show, "Versions:") || !strings.Contains(show, "Vulnerabilities:") {
		t.Errorf("software show:\n%s", show)
	}
	if r := c.run("software", "show", "no-such-product-anywhere"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown software: %d %s", r.code, r.stderr)
	}
	if r := c.run("vulns", "list", "--severity", "dire"); r.code != 2 {
		t.Errorf("bad severity: exit %d", r.code)
	}
	if r := c.run("vulns", "show", "CVE-1999-0001"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown CVE: %d %s", r.code, r.stderr)
	}
	if csv := c.mustRun("vulns", "list", "-o", "csv", "--limit", "3"); !strings.HasPrefix(csv, "cve,severity,cvss") {
		t.Errorf("csv: %s", csv)
	}
}

// The REST API serves the same as the CLI.
func TestExposureREST(t *testing.T) {
	emu, _ := newTVMEmulator(t, 150)
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	env := &app.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Ready: func(name, addr string) { ready <- addr }}
	var wg sync.WaitGroup
	wg.Go(func() {
		app.Run(ctx, env, []string{"--config", c.config, "serve", "--addr", "127.0.0.1:0", "--no-schedule"})
	})
	defer func() { cancel(); wg.Wait() }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", errb.String())
	}
	var vp struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		Total int     `json:"total"`
		Next  *string `json:"next"`
	}
	getJSON(t, base+"/api/v1/vulnerabilities?severity=medium&limit=5", &vp)
	if len(vp.Items) != 5 || vp.Total < 5 || vp.Next == nil {
		t.Fatalf("vulnerabilities: %+v", vp)
	}
	var detail struct {
		Machines        int `json:"machines"`
		ExposedMachines []struct {
			Row struct {
				DeviceID string `json:"deviceId"`
			} `json:"row"`
			InInventory bool `json:"inInventory"`
		} `json:"exposedMachines"`
	}
	getJSON(t, base+"/api/v1/vulnerabilities/"+vp.Items[0].ID, &detail)
	if detail.Machines == 0 || len(detail.ExposedMachines) != detail.Machines || !detail.ExposedMachines[0].InInventory {
		t.Fatalf("vulnerability detail: %+v", detail)
	}
	dev := detail.ExposedMachines[0].Row.DeviceID
	var exp struct {
		CVEs       int `json:"cves"`
		MostSevere *struct {
			CveID string `json:"cveId"`
		} `json:"mostSevere"`
		Software int `json:"software"`
	}
	getJSON(t, base+"/api/v1/machines/"+dev+"/exposure", &exp)
	if exp.CVEs == 0 || exp.MostSevere == nil || exp.Software == 0 {
		t.Errorf("exposure: %+v", exp)
	}
	var rows struct {
		Total int `json:"total"`
	}
	getJSON(t, base+"/api/v1/machines/"+dev+"/vulnerabilities", &rows)
	if rows.Total == 0 {
		t.Errorf("machine vulnerabilities: %+v", rows)
	}
	getJSON(t, base+"/api/v1/machines/"+dev+"/software", &rows)
	if rows.Total != exp.Software {
		t.Errorf("machine software: %d rows, exposure says %d", rows.Total, exp.Software)
	}
	var sp struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	getJSON(t, base+"/api/v1/software?vulnerable=true&limit=3", &sp)
	if len(sp.Items) != 3 {
		t.Fatalf("software: %+v", sp)
	}
	var sd struct {
		Distributions []struct {
			Version string `json:"version"`
		} `json:"distributions"`
	}
	getJSON(t, base+"/api/v1/software/"+sp.Items[0].ID, &sd)
	if len(sd.Distributions) == 0 {
		t.Errorf("software detail: %+v", sd)
	}
	for path, code := range map[string]int{"/api/v1/vulnerabilities/CVE-1999-0001": 404, "/api/v1/vulnerabilities?severity=dire": 400,
		"/api/v1/software/nothing-_-here": 404, "/api/v1/machines/no-such-machine/exposure": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	var spec map[string]any
	getJSON(t, base+"/api/v1/openapi.json", &spec)
	for _, p := range []string{"/api/v1/vulnerabilities", "/api/v1/software/{id}", "/api/v1/machines/{key}/exposure"} {
		if _, ok := spec["paths"].(map[string]any)[p]; !ok {
			t.Errorf("OpenAPI lacks %s", p)
		}
	}
}
