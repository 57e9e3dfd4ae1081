package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/app"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// cli runs mdebridge commands in-process against one configuration.
type cli struct {
	t      *testing.T
	config string
	env    map[string]string
	stdin  string
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runCtx(c.t.Context(), args...)
}

func (c *cli) runCtx(ctx context.Context, args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := &app.Env{Stdin: strings.NewReader(c.stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return c.env[k] }}
	if c.config != "" {
		args = append([]string{"--config", c.config}, args...)
	}
	code := app.Run(ctx, env, args)
	return result{out.String(), errb.String(), code}
}

// mustRun runs a command that must exit 0.
func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("mdebridge %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// newCLI writes a configuration for creds against emu in a temp dir.
func newCLI(t *testing.T, emu *emulatortest.Emu, creds emulator.AppCredentials) *cli {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mdebridge.yaml")
	if err := app.WriteClientConfig(path, emu.URL, emu.CAFile, creds); err != nil {
		t.Fatal(err)
	}
	// Retry fast: the retry policy itself is tested in the mde package.
	return &cli{t: t, config: path, env: map[string]string{"MDEBRIDGE_SYNC_MAX_BACKOFF": "20ms"}}
}

// waitStored waits until the store holds n live machines (while a sync
// runs elsewhere).
func (c *cli) waitStored(n int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Counts map[string]int `json:"counts"`
		}
		if r := c.run("status", "-o", "json"); r.code == 0 && json.Unmarshal([]byte(r.stdout), &st) == nil && st.Counts["machines"] >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("the store never held %d machines", n)
}

// volume marks a test that moves tens of thousands of machines. The race
// detector slows SQLite and JSON work fifteenfold, and finds nothing more in
// volume than in the small tests, so these run in the plain pass of
// `go test ./...` (CI runs both passes).
func volume(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("volume test: runs without -race")
	}
}

func createApp(t *testing.T, emu *emulatortest.Emu, spec emulator.AppSpec) emulator.AppCredentials {
	t.Helper()
	creds, err := emu.CreateApp(spec)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

type syncSummary struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Steps  []struct {
		Name       string         `json:"name"`
		Status     string         `json:"status"`
		Items      int            `json:"items"`
		Retired    int            `json:"retired"`
		APICalls   int            `json:"apiCalls"`
		CallsByAPI map[string]int `json:"callsByApi"`
		Error      string         `json:"error"`
	} `json:"steps"`
}

func (c *cli) sync(args ...string) (syncSummary, result) {
	c.t.Helper()
	r := c.run(append([]string{"sync", "-o", "json"}, args...)...)
	var s syncSummary
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			c.t.Fatalf("sync -o json: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
		}
	}
	return s, r
}

func (c *cli) machineIDs(args ...string) []string {
	c.t.Helper()
	out := c.mustRun(append([]string{"machines", "list", "-o", "json"}, args...)...)
	var ms []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		c.t.Fatalf("machines list -o json: %v", err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// TestSyncListShow is issue 2's main path: sync a tenant that needs three
// pages, list every machine, show one by name and by IP.
func TestSyncListShow(t *testing.T) {
	volume(t)
	const n = 25000
	emu := emulatortest.New(t, emulatortest.WithMachines(n))
	c := newCLI(t, emu, emu.App)

	s, r := c.sync()
	if r.code != 0 || s.Status != "succeeded" || len(s.Steps) == 0 {
		t.Fatalf("sync: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	step := s.Steps[0]
	if step.Name != "machines" || step.Items != n || step.APICalls != 3 || step.CallsByAPI["GET /api/machines"] != 3 {
		t.Errorf("machines step: %+v", step)
	}
	if got := emu.Stats().Calls["GET /api/machines"]; got > 4 {
		t.Errorf("emulator saw %d calls to GET /api/machines, want at most 4", got)
	}
	ids := c.machineIDs()
	if len(ids) != n {
		t.Fatalf("machines list returned %d machines, want %d", len(ids), n)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids", len(seen))
	}

	// Show by computer name and by IP, as JSON that is MDE's own object.
	var first struct {
		ID              string `json:"id"`
		ComputerDNSName string `json:"computerDnsName"`
		LastIPAddress   string `json:"lastIpAddress"`
	}
	out := c.mustRun("machines", "list", "-o", "json", "--limit", "1")
	var one []json.RawMessage
	json.Unmarshal([]byte(out), &one)
	json.Unmarshal(one[0], &first)
	shown := c.mustRun("machines", "show", first.ComputerDNSName, "-o", "json")
	if !strings.Contains(shown, first.ID) || !strings.Contains(shown, `"ipAddresses"`) {
		t.Errorf("show by name: %s", shown)
	}
	if table := c.mustRun("machines", "show", first.ID); !strings.Contains(table, "Network interfaces") || !strings.Contains(table, first.ComputerDNSName) {
		t.Errorf("show table:\n%s", table)
	}

	// Status reports the run and the count.
	var st struct {
		Counts  map[string]int `json:"counts"`
		LastRun struct {
			Status string `json:"status"`
		} `json:"lastRun"`
	}
	json.Unmarshal([]byte(c.mustRun("status", "-o", "json")), &st)
	if st.Counts["machines"] != n || st.LastRun.Status != "succeeded" {
		t.Errorf("status: %+v", st)
	}
}

func TestListFormatsAndFilters(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(300))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync")

	all := c.machineIDs()
	if len(all) != 300 {
		t.Fatalf("%d machines", len(all))
	}
	jsonl := c.mustRun("machines", "list", "-o", "jsonl")
	if lines := strings.Split(strings.TrimSpace(jsonl), "\n"); len(lines) != 300 || !json.Valid([]byte(lines[0])) {
		t.Errorf("jsonl: %d lines", len(lines))
	}
	rec, err := csv.NewReader(strings.NewReader(c.mustRun("machines", "list", "-o", "csv"))).ReadAll()
	if err != nil || len(rec) != 301 || rec[0][0] != "name" {
		t.Errorf("csv: %v, %d records, header %v", err, len(rec), rec[0])
	}
	table := c.mustRun("machines", "list")
	if !strings.HasPrefix(table, "NAME") || strings.Count(table, "\n") != 301 {
		t.Errorf("table has %d lines", strings.Count(table, "\n"))
	}
	// Every filter narrows, and the filtered sets agree with the JSON.
	var ms []struct {
		OSPlatform   string `json:"osPlatform"`
		HealthStatus string `json:"healthStatus"`
		RiskScore    string `json:"riskScore"`
	}
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json")), &ms)
	os0, health0 := ms[0].OSPlatform, ms[0].HealthStatus
	wantOS := 0
	for _, m := range ms {
		if m.OSPlatform == os0 {
			wantOS++
		}
	}
	if got := len(c.machineIDs("--os", strings.ToLower(os0))); got != wantOS {
		t.Errorf("--os %s: %d, want %d", os0, got, wantOS)
	}
	if got := len(c.machineIDs("--os", os0, "--health", health0)); got == 0 || got > wantOS {
		t.Errorf("--os --health: %d", got)
	}
	if r := c.run("machines", "list", "-o", "yaml"); r.code != 2 {
		t.Errorf("-o yaml: exit %d", r.code)
	}
}

func TestAuthFailuresAreOneClearLine(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	tests := []struct {
		name  string
		creds emulator.AppCredentials
		want  []string
	}{
		{"wrong secret", func() emulator.AppCredentials { c := emu.App; c.ClientSecret = "not-the-secret"; return c }(),
			[]string{"AADSTS7000215", "invalid client secret", "azure.client_secret"}},
		{"unknown tenant", func() emulator.AppCredentials {
			c := emu.App
			c.TenantID = "00000000-1111-2222-3333-444444444444"
			return c
		}(),
			[]string{"AADSTS90002", "azure.tenant_id"}},
		{"unknown app", func() emulator.AppCredentials {
			c := emu.App
			c.ClientID = "99999999-1111-2222-3333-444444444444"
			return c
		}(),
			[]string{"AADSTS700016", "azure.client_id"}},
		{"expired secret", createApp(t, emu, emulator.AppSpec{Roles: emulator.AllRoles(), SecretExpiresAt: time.Now().Add(-time.Hour)}),
			[]string{"AADSTS7000222", "expired", "new secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t, emu, tt.creds)
			r := c.run("sync")
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			msg := strings.TrimSpace(r.stderr)
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("not one line:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(r.stdout+r.stderr, tt.creds.ClientSecret) {
				t.Error("the secret was printed")
			}
		})
	}
}

func TestMissingPermissionIsNamed(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(10))
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Alert.Read.All"}})
	c := newCLI(t, emu, creds)
	s, r := c.sync()
	if r.code != 1 || s.Status != "failed" {
		t.Fatalf("sync: exit %d %+v", r.code, s)
	}
	if e := s.Steps[0].Error; !strings.Contains(e, "Machine.Read.All") || !strings.Contains(e, "WindowsDefenderATP") {
		t.Errorf("step error does not name the permission and the fix: %q", e)
	}
	var rep struct {
		Token struct {
			OK    bool     `json:"ok"`
			Roles []string `json:"roles"`
		} `json:"token"`
		Reachability struct{ OK bool } `json:"reachability"`
		Features     []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
			Fix  string `json:"fix"`
		} `json:"features"`
	}
	r = c.run("doctor", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err, r.stdout)
	}
	if r.code != 3 || !rep.Token.OK || !rep.Reachability.OK {
		t.Errorf("doctor: exit %d %+v", r.code, rep)
	}
	for _, f := range rep.Features {
		switch f.Name {
		case "machines":
			if f.OK || !strings.Contains(f.Fix, "Machine.Read.All") {
				t.Errorf("machines feature: %+v", f)
			}
		case "alerts":
			if !f.OK {
				t.Errorf("alerts feature: %+v", f)
			}
		}
	}
	table := c.run("doctor").stdout
	if !strings.Contains(table, "Machine.Read.All") || !strings.Contains(table, "Grant admin consent") {
		t.Errorf("doctor table:\n%s", table)
	}
}

func TestDoctorAllGreen(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(5))
	c := newCLI(t, emu, emu.App)
	r := c.run("doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "[ok  ] Token") || !strings.Contains(r.stdout, "[ok  ] Reach") {
		t.Errorf("doctor: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A failing sync keeps what the last good one stored.
func TestFailuresKeepPreviousData(t *testing.T) {
	volume(t)
	const n = 10500
	emu := emulatortest.New(t, emulatortest.WithMachines(n))
	c := newCLI(t, emu, emu.App)
	if s, r := c.sync(); r.code != 0 || s.Steps[0].Items != n {
		t.Fatalf("first sync: %d %+v", r.code, s)
	}
	if !emu.Tenant().RemoveMachine(c.machineIDs()[0]) {
		t.Fatal("could not remove a machine from the tenant")
	}
	for _, fault := range []emulator.Fault{
		{Route: "GET /api/machines", Status: 503, Skip: 1},
		{Route: "GET /api/machines", MalformedBody: true, Skip: 1},
		{Route: "GET /api/machines", TruncateBody: true, Skip: 1},
	} {
		emu.ClearFaults()
		if _, err := emu.AddFault(fault); err != nil {
			t.Fatal(err)
		}
		s, r := c.sync("--step", "machines")
		if r.code != 1 || s.Status != "failed" {
			t.Errorf("%+v: exit %d, status %s", fault, r.code, s.Status)
			continue
		}
		if e := s.Steps[0].Error; !strings.Contains(e, "GET /api/machines") || !strings.Contains(e, "page") {
			t.Errorf("%+v: error does not name the endpoint and page: %q", fault, e)
		}
		if got := len(c.machineIDs()); got != n {
			t.Errorf("%+v: %d machines after a failed sync, want the %d of the last good one", fault, got, n)
		}
	}
	emu.ClearFaults()
	s, r := c.sync()
	if r.code != 0 || s.Steps[0].Retired != 1 || len(c.machineIDs()) != n-1 {
		t.Errorf("recovery sync: exit %d %+v", r.code, s)
	}
	if got := len(c.machineIDs("--include-retired")); got != n {
		t.Errorf("retired machine lost: %d", got)
	}
}

func TestInterruptedSyncThenRerun(t *testing.T) {
	volume(t)
	emu := emulatortest.New(t, emulatortest.WithMachines(10500))
	c := newCLI(t, emu, emu.App)
	// Slow the second page down so the sync is cut mid-way.
	if _, err := emu.AddFault(emulator.Fault{Route: "GET /api/machines", LatencyMs: 60000, Skip: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var r result
	wg.Go(func() { r = c.runCtx(ctx, "sync", "-o", "json") })
	c.waitStored(10000)
	cancel()
	wg.Wait()
	if r.code == 0 || !strings.Contains(r.stdout, `"interrupted"`) {
		t.Fatalf("cut sync: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := len(c.machineIDs()); got != 10000 {
		t.Errorf("after the cut: %d machines, want the first page's 10000", got)
	}
	emu.ClearFaults()
	s, r2 := c.sync()
	if r2.code != 0 || s.Steps[0].Items != 10500 || s.Steps[0].Retired != 0 {
		t.Fatalf("rerun: exit %d %+v", r2.code, s)
	}
	if got := len(c.machineIDs()); got != 10500 {
		t.Errorf("after the rerun: %d machines", got)
	}
}

func TestConfigAndUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("azure:\n  tenant_id: x\n  client_id: y\n  client_secret: z\n  colud: public\n"), 0o600)
	c := &cli{t: t, config: bad}
	r := c.run("sync")
	if r.code != 1 || !strings.Contains(r.stderr, "bad.yaml") || !strings.Contains(r.stderr, `"azure.colud"`) {
		t.Errorf("unknown key: exit %d %q", r.code, r.stderr)
	}
	missing := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missing, []byte("azure:\n  client_id: y\n  client_secret: z\n"), 0o600)
	c.config = missing
	if r := c.run("sync"); r.code != 1 || !strings.Contains(r.stderr, "azure.tenant_id: required") {
		t.Errorf("missing tenant: exit %d %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{}, {"nope"}, {"sync", "--bogus"}, {"sync", "-o", "csv"}, {"machines"}, {"machines", "frob"}, {"machines", "show"}} {
		if r := (&cli{t: t}).run(args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
	}
	if r := (&cli{t: t}).run("help"); r.code != 0 || !strings.Contains(r.stdout, "demo") {
		t.Errorf("help: %d %s", r.code, r.stdout)
	}
	if r := (&cli{t: t}).run("version", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"go"`) {
		t.Errorf("version: %d %s", r.code, r.stdout)
	}
}

func TestNotFoundAndAmbiguous(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(200))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync")
	r := c.run("machines", "show", "no-such-machine-anywhere")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("not found: %d %q", r.code, r.stderr)
	}
	var ms []struct {
		Name string `json:"computerDnsName"`
	}
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json")), &ms)
	name := ms[0].Name
	host, _, _ := strings.Cut(name, ".")
	if r := c.run("machines", "show", host[:len(host)-1]+"zz"); r.code != 1 || !strings.Contains(r.stderr, "did you mean") {
		t.Errorf("near matches: %d %q", r.code, r.stderr)
	}
}

func TestSecretsNeverAppear(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	c := newCLI(t, emu, emu.App)
	secret := emu.App.ClientSecret
	var all strings.Builder
	for _, args := range [][]string{{"--log-level", "debug", "sync"}, {"--log-level", "debug", "doctor", "-o", "json"}, {"status"}, {"machines", "list", "-o", "json"}} {
		r := c.run(args...)
		all.WriteString(r.stdout + r.stderr)
	}
	if strings.Contains(all.String(), secret) {
		t.Error("the client secret appeared in output or logs")
	}
	db, err := os.ReadFile(filepath.Join(filepath.Dir(c.config), "mdebridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(secret)) {
		t.Error("the client secret is in the database")
	}
}

func TestServeAPI(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(150))
	c := newCLI(t, emu, emu.App)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	env := &app.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
		Ready: func(name, addr string) { ready <- addr }}
	var wg sync.WaitGroup
	var code int
	wg.Go(func() { code = app.Run(ctx, env, []string{"--config", c.config, "serve", "--addr", "127.0.0.1:0"}) })
	defer func() { cancel(); wg.Wait() }()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", errb.String())
	}
	base := "http://" + addr
	// The scheduler syncs at start; wait for it.
	var page struct {
		Total int `json:"total"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for page.Total != 150 && time.Now().Before(deadline) {
		getJSON(t, base+"/api/v1/machines?limit=5", &page)
		time.Sleep(50 * time.Millisecond)
	}
	if page.Total != 150 {
		t.Fatalf("REST API lists %d machines, want 150", page.Total)
	}
	// The run goes on after the machines (logon users): wait for its end.
	var runs struct {
		Runs []struct{ Status string } `json:"runs"`
	}
	for time.Now().Before(deadline) && (len(runs.Runs) == 0 || runs.Runs[0].Status == "running") {
		getJSON(t, base+"/api/v1/sync", &runs)
		time.Sleep(50 * time.Millisecond)
	}
	var h map[string]string
	if getJSON(t, base+"/healthz", &h); h["status"] != "ok" {
		t.Errorf("healthz %v", h)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"mdebridge_sync_runs_total", "mdebridge_upstream_api_calls_total", "go_goroutines"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Errorf("serve exit %d: %s", code, errb.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for a server goroutine to write while
// the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func TestDemoOnce(t *testing.T) {
	dir := t.TempDir()
	r := (&cli{t: t}).run("demo", "--dir", dir, "--machines", "300", "--once")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	c := &cli{t: t, config: filepath.Join(dir, "mdebridge.yaml")}
	if got := len(c.machineIDs()); got != 300 {
		t.Errorf("demo store holds %d machines", got)
	}
	fmt.Fprint(io.Discard, r.stdout)
}

// TestKilledSyncThenRerun kills a real mdebridge process (SIGKILL, no chance
// to clean up) while it waits for its second page, then syncs again: the
// dead run's lease is taken over and the store ends complete and consistent.
func TestKilledSyncThenRerun(t *testing.T) {
	volume(t)
	bin := filepath.Join(t.TempDir(), "mdebridge")
	build := exec.Command("go", "build", "-o", bin, "../cmd/mdebridge")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const n = 10500
	emu := emulatortest.New(t, emulatortest.WithMachines(n))
	c := newCLI(t, emu, emu.App)
	if _, err := emu.AddFault(emulator.Fault{Route: "GET /api/machines", LatencyMs: 120000, Skip: 1}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", c.config, "sync")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitStored(10000)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	var st struct {
		Counts  map[string]int `json:"counts"`
		LastRun struct {
			Status string `json:"status"`
		} `json:"lastRun"`
	}
	json.Unmarshal([]byte(c.mustRun("status", "-o", "json")), &st)
	if st.LastRun.Status != "running" || st.Counts["machines"] != 10000 {
		t.Fatalf("after the kill: %+v, want the first page stored and the run left running", st)
	}
	emu.ClearFaults()
	s, r := c.sync()
	if r.code != 0 || s.Steps[0].Items != n || s.Steps[0].Retired != 0 {
		t.Fatalf("rerun: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	json.Unmarshal([]byte(c.mustRun("status", "-o", "json")), &st)
	if st.Counts["machines"] != n || st.Counts["machines_retired"] != 0 {
		t.Errorf("after the rerun: %+v", st.Counts)
	}
}
