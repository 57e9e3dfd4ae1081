package app_test

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// tenantCounts is what GET /_emulator/tenant says the tenant holds.
func tenantCounts(t *testing.T, emu *emulatortest.Emu) map[string]int {
	t.Helper()
	_, body := emu.Get(t, "/_emulator/tenant", "")
	var ten struct{ Counts map[string]int }
	if err := json.Unmarshal(body, &ten); err != nil {
		t.Fatal(err)
	}
	return ten.Counts
}

func (c *cli) counts() map[string]int {
	c.t.Helper()
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("status", "-o", "json")), &st); err != nil {
		c.t.Fatal(err)
	}
	return st.Counts
}

func stepNamed(t *testing.T, s syncSummary, name string) struct {
	Name       string         `json:"name"`
	Status     string         `json:"status"`
	Items      int            `json:"items"`
	Retired    int            `json:"retired"`
	APICalls   int            `json:"apiCalls"`
	CallsByAPI map[string]int `json:"callsByApi"`
	Error      string         `json:"error"`
} {
	t.Helper()
	for _, st := range s.Steps {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no step %s in %+v", name, s)
	return s.Steps[0]
}

// TestLogonUsersByHunting: one hunting query stores exactly the logon users
// the tenant holds, and machines logonusers shows them.
func TestLogonUsersByHunting(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(400))
	c := newCLI(t, emu, emu.App)
	s, r := c.sync()
	if r.code != 0 {
		t.Fatalf("sync: exit %d\n%s", r.code, r.stderr)
	}
	step := stepNamed(t, s, "logon-users")
	want := tenantCounts(t, emu)
	if step.Status != "succeeded" || step.APICalls != 1 || step.CallsByAPI["POST /api/advancedqueries/run"] != 1 || step.Items != want["machineLogonUsers"] {
		t.Errorf("logon-users step %+v; the tenant holds %v", step, want)
	}
	got := c.counts()
	if got["machine_logon_users"] != want["machineLogonUsers"] || got["logon_users"] != want["logonUsers"] || got["machine_logon_users"] == 0 {
		t.Errorf("stored %v; the tenant holds %v", got, want)
	}
	if emu.Stats().Calls["GET /api/machines/{id}/logonusers"] != 0 {
		t.Error("asked machines one by one although hunting is permitted")
	}

	// The machine with the most users, shown by name, agrees with the API.
	var best struct {
		id, name string
		n        int
	}
	for _, id := range c.machineIDs()[:100] {
		var page struct{ Value []json.RawMessage }
		_, body := emu.Get(t, "/api/machines/"+id+"/logonusers", emu.AppToken(t))
		json.Unmarshal(body, &page)
		if len(page.Value) > best.n {
			best.id, best.n = id, len(page.Value)
		}
	}
	var m struct {
		ComputerDNSName string `json:"computerDnsName"`
	}
	json.Unmarshal([]byte(c.mustRun("machines", "show", best.id, "-o", "json")), &m)
	var users []struct {
		ID         string `json:"id"`
		MachineID  string `json:"machineId"`
		LogonTypes string `json:"logonTypes"`
		LastSeen   string `json:"lastSeen"`
		Source     string `json:"source"`
	}
	if err := json.Unmarshal([]byte(c.mustRun("machines", "logonusers", m.ComputerDNSName, "-o", "json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != best.n || users[0].MachineID != best.id || users[0].Source != "hunting" || users[0].LogonTypes == "" {
		t.Errorf("machines logonusers %s: %+v, want %d users", m.ComputerDNSName, users, best.n)
	}
	table := c.mustRun("machines", "logonusers", best.id)
	if !strings.HasPrefix(table, "ACCOUNT") || strings.Count(table, "\n") != best.n+1 {
		t.Errorf("table:\n%s", table)
	}
	if r := c.run("machines", "logonusers", "no-such-host"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("unknown machine: %d %s", r.code, r.stderr)
	}

	// A second sync changes nothing and retires nothing.
	s, _ = c.sync()
	if step := stepNamed(t, s, "logon-users"); step.Retired != 0 || step.Items != want["machineLogonUsers"] {
		t.Errorf("second sync: %+v", step)
	}
}

// TestLogonUsersFallBackPerMachine: without the hunting permission, one call
// per machine within the budget, resumed by the next sync, until the store
// holds what hunting would have found.
func TestLogonUsersFallBackPerMachine(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(60), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All", "User.Read.All"}})
	c := newCLI(t, emu, creds)
	c.env["MDEBRIDGE_SYNC_LOGON_USER_CALLS"] = "40"
	s, r := c.sync()
	if r.code != 0 {
		t.Fatalf("sync: exit %d\n%s", r.code, r.stderr)
	}
	if step := stepNamed(t, s, "logon-users"); step.Status != "succeeded" || step.CallsByAPI["GET /api/machines/{id}/logonusers"] != 40 ||
		step.CallsByAPI["POST /api/advancedqueries/run"] != 1 {
		t.Errorf("first sync: %+v", step)
	}
	s, _ = c.sync()
	if step := stepNamed(t, s, "logon-users"); step.CallsByAPI["GET /api/machines/{id}/logonusers"] != 20 {
		t.Errorf("second sync resumes with the last 20 machines: %+v", step)
	}
	want := tenantCounts(t, emu)
	if got := c.counts(); got["machine_logon_users"] != want["machineLogonUsers"] || got["logon_users"] != want["logonUsers"] {
		t.Errorf("stored %v; the tenant holds %v", got, want)
	}
	var users []struct {
		Source        string `json:"source"`
		IsDomainAdmin *bool  `json:"isDomainAdmin"`
	}
	json.Unmarshal([]byte(c.mustRun("machines", "logonusers", c.machineIDs()[0], "-o", "json")), &users)
	for _, u := range users {
		if u.Source != "api" || u.IsDomainAdmin == nil {
			t.Errorf("a user from the per-machine API: %+v", u)
		}
	}
}

// TestLogonUsersWithoutPermissionAndOverQuota: neither permission is one
// clear note naming both, and the sync of what is permitted succeeds (exit 0); a spent CPU quota
// fails the step with the service's reason and loses nothing stored.
func TestLogonUsersWithoutPermissionAndOverQuota(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(30))
	c := newCLI(t, emu, createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}}))
	s, r := c.sync()
	step := stepNamed(t, s, "logon-users")
	if r.code != 0 || step.Status != "not-permitted" || !strings.Contains(step.Error, "AdvancedQuery.Read.All, User.Read.All") ||
		stepNamed(t, s, "machines").Items != 30 {
		t.Errorf("without either permission: exit %d, %+v", r.code, step)
	}

	c = newCLI(t, emu, emu.App)
	if _, r := c.sync(); r.code != 0 {
		t.Fatalf("sync: %d %s", r.code, r.stderr)
	}
	before := c.counts()
	emu.SpendHuntingCPU(10 * time.Minute)
	s, r = c.sync()
	step = stepNamed(t, s, "logon-users")
	if r.code != 3 || step.Status != "failed" || !strings.Contains(step.Error, "CPU quota") || !strings.Contains(step.Error, "frees up in") {
		t.Errorf("over the CPU quota: exit %d, %+v", r.code, step)
	}
	if step.CallsByAPI["POST /api/advancedqueries/run"] != 1 || step.CallsByAPI["GET /api/machines/{id}/logonusers"] != 0 {
		t.Errorf("a spent quota is reported, neither retried for an hour nor worked around machine by machine: %+v", step.CallsByAPI)
	}
	if after := c.counts(); after["machine_logon_users"] != before["machine_logon_users"] || after["logon_users"] != before["logon_users"] {
		t.Errorf("stored logon users changed: %v -> %v", before, after)
	}
}

// TestHuntFormats: hunt returns rows in the requested format (issue 5).
func TestHuntFormats(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	c := newCLI(t, emu, emu.App)
	q := `DeviceInfo | summarize arg_max(Timestamp, DeviceName, OSPlatform) by DeviceId | order by DeviceName asc | take 5`

	var rows []struct {
		DeviceID   string `json:"DeviceId"`
		DeviceName string
		OSPlatform string
		Timestamp  string
	}
	if err := json.Unmarshal([]byte(c.mustRun("hunt", q, "-o", "json")), &rows); err != nil || len(rows) != 5 || rows[0].DeviceName == "" {
		t.Fatalf("-o json: %v %+v", err, rows)
	}
	lines := strings.Split(strings.TrimSpace(c.mustRun("hunt", q, "-o", "jsonl")), "\n")
	if len(lines) != 5 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[0], rows[0].DeviceID) {
		t.Errorf("-o jsonl: %q", lines)
	}
	rec, err := csv.NewReader(strings.NewReader(c.mustRun("hunt", q, "-o", "csv"))).ReadAll()
	if err != nil || len(rec) != 6 || !slices.Equal(rec[0], []string{"DeviceId", "Timestamp", "DeviceName", "OSPlatform"}) || rec[1][2] != rows[0].DeviceName {
		t.Errorf("-o csv: %v %v", err, rec)
	}
	table := c.mustRun("hunt", q)
	if !strings.HasPrefix(table, "DeviceId") || strings.Count(table, "\n") != 6 || !strings.Contains(table, rows[0].DeviceName) {
		t.Errorf("table:\n%s", table)
	}

	// From a file and from standard input.
	file := filepath.Join(t.TempDir(), "q.kql")
	os.WriteFile(file, []byte("// devices by platform\nDeviceInfo\n| summarize Devices = dcount(DeviceId) by OSPlatform\n"), 0o644)
	var byOS []struct {
		OSPlatform string
		Devices    int
	}
	json.Unmarshal([]byte(c.mustRun("hunt", "-f", file, "-o", "json")), &byOS)
	total := 0
	for _, r := range byOS {
		total += r.Devices
	}
	var all []struct{ N int }
	json.Unmarshal([]byte(c.mustRun("hunt", "DeviceInfo | summarize N = dcount(DeviceId)", "-o", "json")), &all)
	if len(all) != 1 || total != all[0].N || total == 0 {
		t.Errorf("-f: %+v, want %+v devices in all", byOS, all)
	}
	c.stdin = "DeviceInfo | take 2"
	if out := c.mustRun("hunt", "-f", "-", "-o", "jsonl"); strings.Count(out, "\n") != 2 {
		t.Errorf("-f -: %q", out)
	}
}

func TestHuntNamedQueries(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300), emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	c := newCLI(t, emu, emu.App)
	list := c.mustRun("hunt", "--list")
	for _, want := range []string{"lateral-movement/credential-dumping", "persistence/scheduled-task", "file-origin", "process/parents",
		"network/external-connections", "privilege-escalation/system-from-user", "tampering/defender-settings", "cover-up/event-log-cleared"} {
		if !strings.Contains(list, want) {
			t.Errorf("--list lacks %s", want)
		}
	}
	var lib []struct{ Name string }
	if json.Unmarshal([]byte(c.mustRun("hunt", "--list", "-o", "json")), &lib); len(lib) < 30 {
		t.Errorf("--list -o json: %d queries", len(lib))
	}

	// Find a machine that dumped credentials, then ask about it by name.
	var hits []struct{ DeviceName, ProcessCommandLine string }
	json.Unmarshal([]byte(c.mustRun("hunt", "--run", "lateral-movement/credential-dumping", "--since", "30d", "-o", "json")), &hits)
	if len(hits) == 0 {
		t.Fatal("no credential dumping in the tenant")
	}
	host, _, _ := strings.Cut(hits[0].DeviceName, ".")
	r := c.run("hunt", "--run", "lateral-movement/credential-dumping", "--device", host, "--since", "30d", "--show-query", "-o", "json")
	var mine []struct{ DeviceName string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &mine) != nil || len(mine) == 0 || mine[0].DeviceName != hits[0].DeviceName {
		t.Errorf("--device %s: %d %s %s", host, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `DeviceName =~ "`+host+`"`) {
		t.Errorf("--show-query printed %q", r.stderr)
	}
	// A limit.
	var some []json.RawMessage
	json.Unmarshal([]byte(c.mustRun("hunt", "--run", "network/external-connections", "--limit", "3", "-o", "json")), &some)
	if len(some) != 3 {
		t.Errorf("--limit 3: %d rows", len(some))
	}
}

func TestHuntErrors(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	c := newCLI(t, emu, emu.App)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"hunt", "DeviceInfo | wher x"}, 1, "A recognition error occurred.. Fix syntax errors in your query."},
		{[]string{"hunt", "DeviceInfo | where Nope == 1"}, 1, "Failed to resolve scalar expression named 'Nope'"},
		{[]string{"hunt"}, 2, "give one query"},
		{[]string{"hunt", "DeviceInfo", "--run", "file-origin"}, 2, "give one query"},
		{[]string{"hunt", "DeviceInfo", "--device", "x"}, 2, "for named queries"},
		{[]string{"hunt", "--run", "persistance"}, 2, "persistence/"},
		{[]string{"hunt", "--run", "file-origin"}, 2, "needs one of --file"},
		{[]string{"hunt", "--run", "process/powershell", "--since", "2w"}, 2, "not a time range"},
		{[]string{"hunt", "--run", "process/details", "--sha1", "xyz"}, 2, "not a SHA1 hash"},
		{[]string{"hunt", "-f", "/no/such/file.kql"}, 1, "no such file"},
		{[]string{"hunt", "DeviceInfo", "-o", "yaml"}, 2, "-o"},
	} {
		r := c.run(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
	// The quota: a clear error, at once.
	emu.SpendHuntingCPU(10 * time.Minute)
	start := time.Now()
	r := c.run("hunt", "DeviceInfo | take 1")
	if r.code != 1 || !strings.Contains(r.stderr, "CPU quota") || !strings.Contains(r.stderr, "frees up in") || time.Since(start) > 30*time.Second {
		t.Errorf("over quota: exit %d %q after %s", r.code, r.stderr, time.Since(start))
	}
	emu.ResetHuntingCPU()
	// Without the permission: named.
	c = newCLI(t, emu, createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}}))
	if r := c.run("hunt", "DeviceInfo"); r.code != 1 || !strings.Contains(r.stderr, "AdvancedQuery.Read.All") {
		t.Errorf("without the permission: %d %q", r.code, r.stderr)
	}
}

// TestLogonUsers20kWithinCalls is issue 3's done-when for logon users: a
// 20,000-machine tenant's logon users, exactly, in few calls.
func TestLogonUsers20kWithinCalls(t *testing.T) {
	volume(t)
	emu := emulatortest.New(t, emulatortest.WithMachines(25000))
	c := newCLI(t, emu, emu.App)
	s, r := c.sync()
	if r.code != 0 {
		t.Fatalf("sync: %d %s", r.code, r.stderr)
	}
	step := stepNamed(t, s, "logon-users")
	want := tenantCounts(t, emu)
	if got := c.counts(); got["machine_logon_users"] != want["machineLogonUsers"] || got["logon_users"] != want["logonUsers"] {
		t.Errorf("stored %v; the tenant holds %v", got, want)
	}
	// 25,000 machines are expected to have 75,000 logon users the first
	// time: two queries, each under the row cap.
	if step.APICalls > 3 || emu.Stats().Calls["POST /api/advancedqueries/run"] != step.APICalls {
		t.Errorf("%d hunting calls (emulator: %d)", step.APICalls, emu.Stats().Calls["POST /api/advancedqueries/run"])
	}
	t.Logf("logon users: %d edges of %d accounts in %d calls", want["machineLogonUsers"], want["logonUsers"], step.APICalls)
}
