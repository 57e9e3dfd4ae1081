package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/app"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// fastActions makes the emulator's actions take a fraction of a second.
func fastActions(t *testing.T, emu *emulatortest.Emu) {
	t.Helper()
	b := emu.ActionBehaviour()
	b.PendingMs, b.RunMs, b.VisibleAfterMs = 100, 200, 0
	if err := emu.SetActionBehaviour(b); err != nil {
		t.Fatal(err)
	}
}

type machineRef struct {
	ID              string `json:"id"`
	ComputerDNSName string `json:"computerDnsName"`
	HealthStatus    string `json:"healthStatus"`
	OSPlatform      string `json:"osPlatform"`
	Onboarding      string `json:"onboardingStatus"`
	LastIPAddress   string `json:"lastIpAddress"`
}

// online returns the synced machines that pick actions up.
func (c *cli) online() []machineRef {
	c.t.Helper()
	var ms []machineRef
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json", "--health", "Active")), &ms)
	var out []machineRef
	for _, m := range ms {
		if m.Onboarding == "Onboarded" && strings.HasPrefix(m.OSPlatform, "Windows1") {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		c.t.Fatal("no online Windows machine")
	}
	return out
}

// The acceptance: isolate <computer name> --comment x --wait -o json
// reports Succeeded.
func TestIsolateByNameWaitJSON(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(80))
	fastActions(t, emu)
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	m := c.online()[0]
	r := c.run("isolate", m.ComputerDNSName, "--comment", "x", "--wait", "-o", "json")
	var a struct {
		ID, Status, MachineID, Type, RequestorComment string
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); r.code != 0 || err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if a.Status != "Succeeded" || a.MachineID != m.ID || a.Type != "Isolate" || !strings.HasPrefix(a.RequestorComment, "x [mdebridge ") {
		t.Errorf("action %+v", a)
	}
	if st, _ := emu.MachineResponseState(m.ID); st.Isolation != "Full" {
		t.Errorf("the machine is not isolated: %+v", st)
	}
	// The store shows it: on the machine, in the action list, in the audit log.
	if show := c.mustRun("machines", "show", m.ID); !strings.Contains(show, "Isolated:") || !strings.Contains(show, "yes Full") {
		t.Errorf("machines show lacks the isolation:\n%s", show)
	}
	if list := c.mustRun("actions", "list", "--machine", m.ComputerDNSName); !strings.Contains(list, a.ID) {
		t.Errorf("actions list lacks the action:\n%s", list)
	}
	var audit []struct{ Operation, Result, Status, Comment, Actor string }
	json.Unmarshal([]byte(c.mustRun("audit", "--target", m.ID, "-o", "json")), &audit)
	if len(audit) != 3 || audit[0].Result != "completed" || audit[0].Status != "Succeeded" || audit[0].Comment != "x" || audit[0].Actor == "" {
		t.Errorf("audit %+v", audit)
	}
	if show := c.mustRun("actions", "show", a.ID); !strings.Contains(show, "Succeeded") {
		t.Errorf("actions show:\n%s", show)
	}
}

// Three isolate commands at once for one machine make one action.
func TestConcurrentIsolateCommands(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(60))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	m := c.online()[0]
	before := emu.MachineActionCount(m.ID, "Isolate")
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Go(func() { codes[i] = c.run("isolate", m.ComputerDNSName, "--comment", fmt.Sprintf("analyst %d", i)).code })
	}
	wg.Wait()
	if got := emu.MachineActionCount(m.ID, "Isolate") - before; got != 1 || codes[0]+codes[1]+codes[2] != 0 {
		t.Errorf("%d new isolate actions (exits %v), want 1", got, codes)
	}
}

func TestResponseBadInputs(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(200))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	var ms []machineRef
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json")), &ms)
	host, _, _ := strings.Cut(ms[0].ComputerDNSName, ".")
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"isolate", host[:len(host)-1] + "zz", "--comment", "x"}, 1, []string{"not found", "did you mean"}},
		{[]string{"scan", "203.0.113.99", "--comment", "x"}, 1, []string{"not found"}},
		{[]string{"isolate", ms[0].ID}, 2, []string{"comment is required"}},
		{[]string{"isolate", ms[0].ID, "--comment", "x", "--type", "partial"}, 2, []string{"isolation type"}},
		{[]string{"quarantine-file", ms[0].ID, "--comment", "x", "--sha1", "abc"}, 2, []string{"SHA-1"}},
		{[]string{"live-response", ms[0].ID, "--comment", "x"}, 2, []string{"at least one command"}},
		{[]string{"tag", ms[0].ID, "--comment", "x"}, 2, []string{"--add TAG or --remove TAG"}},
		{[]string{"actions", "cancel", "00000000-0000-4000-8000-000000000000"}, 2, []string{"comment is required"}},
		{[]string{"enrich", "not a thing"}, 2, []string{"is not a SHA-1"}},
		{[]string{"indicators", "import", "/no/such/file", "--comment", "x"}, 1, []string{"no such file"}},
	}
	for _, tt := range tests {
		r := c.run(tt.args...)
		if r.code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.code, tt.code, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", tt.args, r.stderr, w)
			}
		}
	}
	// An ambiguous name: the candidates, and no action.
	seen := map[string]string{}
	for _, m := range ms {
		h, _, _ := strings.Cut(m.ComputerDNSName, ".")
		if other, ok := seen[h]; ok && other != m.ComputerDNSName {
			r := c.run("isolate", h, "--comment", "x")
			if r.code != 1 || !strings.Contains(r.stderr, "ambiguous") || !strings.Contains(r.stderr, m.ID) {
				t.Errorf("ambiguous %s: exit %d %s", h, r.code, r.stderr)
			}
			break
		}
		seen[h] = m.ComputerDNSName
	}
	if n := emu.Stats().Calls["POST /api/machines/{id}/isolate"]; n != 0 {
		t.Errorf("%d isolations were sent", n)
	}
	// A missing permission is named.
	weak := newCLI(t, emu, createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}}))
	weak.mustRun("sync", "--step", "machines")
	r := weak.run("scan", ms[0].ID, "--comment", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "Machine.Scan") || !strings.Contains(r.stderr, "WindowsDefenderATP") {
		t.Errorf("missing permission: exit %d %s", r.code, r.stderr)
	}
}

// On a terminal a disruptive action asks first; "n" sends nothing.
func TestConfirmationPrompt(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(60))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	m := c.online()[0]
	run := func(answer string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		env := &app.Env{Stdin: strings.NewReader(answer), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return c.env[k] },
			IsTerminal: func(io.Writer) bool { return true }}
		code := app.Run(t.Context(), env, append([]string{"--config", c.config}, args...))
		return code, errb.String()
	}
	code, stderr := run("n\n", "offboard", m.ComputerDNSName, "--comment", "decommission")
	if code != 1 || !strings.Contains(stderr, "Continue? [y/N]") || !strings.Contains(stderr, m.ComputerDNSName) || !strings.Contains(stderr, "Nothing was sent") {
		t.Errorf("declined: exit %d %s", code, stderr)
	}
	if n := emu.Stats().Calls["POST /api/machines/{id}/offboard"]; n != 0 {
		t.Fatalf("offboarded after a no")
	}
	if code, stderr := run("y\n", "offboard", m.ComputerDNSName, "--comment", "decommission"); code != 0 {
		t.Errorf("accepted: exit %d %s", code, stderr)
	}
	if code, stderr := run("", "restrict", m.ID, "--comment", "x", "--yes"); code != 0 || strings.Contains(stderr, "Continue?") {
		t.Errorf("--yes: exit %d %s", code, stderr)
	}
	// Not disruptive: no question.
	if code, stderr := run("", "scan", m.ID, "--comment", "x"); code != 0 || strings.Contains(stderr, "Continue?") {
		t.Errorf("scan: exit %d %s", code, stderr)
	}
}

// 1,000 indicators from a CSV file arrive in two import calls; bad lines
// are named and the good ones imported, none with --atomic; a sync pulls
// the indicators into the store.
func TestIndicatorsImportCSV(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	c := newCLI(t, emu, emu.App)
	dir := t.TempDir()
	var b bytes.Buffer
	b.WriteString("indicatorValue,indicatorType,action,title,severity\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "%040x,FileSha1,Block,ioc %d,High\n", i+1, i)
	}
	file := filepath.Join(dir, "iocs.csv")
	os.WriteFile(file, b.Bytes(), 0o600)
	r := c.run("indicators", "import", file, "--comment", "feed 2026-11")
	if r.code != 0 || !strings.Contains(r.stdout, "Sent in 2 call(s): 1000 taken") {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := emu.Stats().Calls["POST /api/indicators/import"]; n != 2 {
		t.Errorf("%d import calls, want 2", n)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("indicatorValue,action,title\nevil.example,Block,c2\nnot-a-hash-or-domain!,Block,x\n10.0.0.1,Block,private\n"), 0o600)
	r = c.run("indicators", "import", bad, "--comment", "feed", "--atomic")
	if r.code != 1 || !strings.Contains(r.stdout, "Nothing sent") || emu.Stats().Calls["POST /api/indicators/import"] != 2 {
		t.Errorf("atomic: exit %d\n%s", r.code, r.stdout)
	}
	r = c.run("indicators", "import", bad, "--comment", "feed")
	if r.code != 3 || !strings.Contains(r.stdout, "LINE") || !strings.Contains(r.stdout, "3 ") || !strings.Contains(r.stdout, "not an external IP") {
		t.Errorf("partial: exit %d\n%s", r.code, r.stdout)
	}
	r = c.run("indicators", "import", file, "--comment", "again", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "0 new") {
		t.Errorf("dry run: exit %d\n%s", r.code, r.stdout)
	}
	// A sync pulls every indicator into the store, including the tenant's own.
	s, r2 := c.sync()
	if r2.code != 0 {
		t.Fatalf("sync: %d %s", r2.code, r2.stderr)
	}
	var stepItems int
	for _, st := range s.Steps {
		if st.Name == "indicators" {
			stepItems = st.Items
		}
	}
	var list []json.RawMessage
	json.Unmarshal([]byte(c.mustRun("indicators", "list", "-o", "json")), &list)
	if stepItems < 1001 || len(list) != stepItems {
		t.Errorf("sync pulled %d indicators, the store lists %d", stepItems, len(list))
	}
	r = c.run("indicators", "add", "198.51.100.23", "--action", "Block", "--title", "c2", "--comment", "seen in alert", "-o", "json")
	var in struct{ ID, IndicatorType string }
	if json.Unmarshal([]byte(r.stdout), &in); r.code != 0 || in.IndicatorType != "IpAddress" {
		t.Fatalf("add: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("indicators", "update", "198.51.100.23", "--severity", "High", "--comment", "raise"); r.code != 0 || !strings.Contains(r.stdout, "1 changed") {
		t.Errorf("update: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run("indicators", "delete", in.ID, "--comment", "done"); r.code != 0 {
		t.Errorf("delete: exit %d %s", r.code, r.stderr)
	}
}

// A bulk scan by tag, interrupted, resumes without issuing anything twice.
func TestBulkScanResume(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(300))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	var ms []machineRef
	json.Unmarshal([]byte(c.mustRun("machines", "list", "-o", "json", "--tag", "Finance")), &ms)
	if len(ms) < 10 {
		t.Skipf("only %d machines tagged Finance", len(ms))
	}
	before := map[string]int{}
	for _, m := range ms {
		before[m.ID] = emu.MachineActionCount(m.ID, "RunAntiVirusScan")
	}
	// Slow each scan request so the job can be cut part way.
	emu.AddFault(emulator.Fault{Route: "POST /api/machines/{id}/runAntiVirusScan", LatencyMs: 150})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		time.Sleep(400 * time.Millisecond)
		cancel()
	}()
	r := c.runCtx(ctx, "scan", "--tag", "Finance", "--comment", "sweep", "--concurrency", "2")
	if r.code == 0 || !strings.Contains(r.stderr, "mdebridge actions resume ") {
		t.Fatalf("cut run: exit %d\n%s", r.code, r.stderr)
	}
	job := strings.Fields(r.stderr[strings.Index(r.stderr, "actions resume ")+len("actions resume "):])[0]
	emu.ClearFaults()
	if jobs := c.mustRun("actions", "jobs"); !strings.Contains(jobs, job) || !strings.Contains(jobs, "interrupted") {
		t.Errorf("jobs:\n%s", jobs)
	}
	r = c.run("actions", "resume", job)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, m := range ms {
		if got := emu.MachineActionCount(m.ID, "RunAntiVirusScan") - before[m.ID]; got != 1 {
			t.Errorf("%s: %d new scans", m.ComputerDNSName, got)
		}
	}
}

func TestEnrichAndTagCommands(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(200), emulatortest.WithAlerts(200))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "indicators")
	r := c.run("enrich", "office.com")
	if r.code != 0 || !strings.Contains(r.stdout, "Prevalence:") || !strings.Contains(r.stdout, "Machines (") {
		t.Errorf("enrich domain: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var sha256 string
	for _, f := range emu.Tenant().CatalogFiles() {
		if f.Name == "mimikatz.exe" {
			sha256 = f.SHA256
		}
	}
	r = c.run("enrich", sha256, "-o", "json")
	var e struct {
		Kind       string
		Info       json.RawMessage
		Indicators []json.RawMessage
	}
	if json.Unmarshal([]byte(r.stdout), &e); r.code != 0 || e.Kind != "file" || len(e.Info) == 0 || len(e.Indicators) == 0 {
		t.Errorf("enrich file: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	m := c.online()[0]
	r = c.run("tag", m.ID, "--add", "IR-Case-42", "--comment", "case 42")
	if r.code != 0 || !strings.Contains(r.stdout, "IR-Case-42") {
		t.Errorf("tag: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	weak := newCLI(t, emu, createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All", "URL.Read.All"}}))
	r = weak.run("enrich", "office.com")
	if r.code != 3 || !strings.Contains(r.stderr, "alerts") || !strings.Contains(r.stderr, "Alert.Read.All") {
		t.Errorf("enrich without alert permission: exit %d %s", r.code, r.stderr)
	}
}

// serve's REST API acts with the responder token and refuses without it.
func TestServeRespond(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	c := newCLI(t, emu, emu.App)
	c.mustRun("sync", "--step", "machines", "--step", "machine-actions") // what responding needs
	m := c.online()[0]
	const tok = "a-long-responder-token-for-tests"
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	env := &app.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "MDEBRIDGE_RESPONSE_RESPONDER_TOKEN" {
			return tok
		}
		return c.env[k]
	}, Ready: func(name, addr string) { ready <- addr }}
	var wg sync.WaitGroup
	wg.Go(func() {
		app.Run(ctx, env, []string{"--config", c.config, "serve", "--addr", "127.0.0.1:0", "--no-schedule"})
	})
	defer func() { cancel(); wg.Wait() }()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", errb.String())
	}
	post := func(auth, body string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/api/v1/actions", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	body := fmt.Sprintf(`{"operation":"scan","targets":[%q],"comment":"from the SOAR"}`, m.ComputerDNSName)
	if code, _ := post("", body); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	code, resp := post(tok, body)
	if code != 200 || !strings.Contains(resp, `"result": "created"`) {
		t.Errorf("with the token: %d %s", code, resp)
	}
	if strings.Contains(errb.String(), tok) {
		t.Error("the token is in the log")
	}
}

func TestBenchIndicators(t *testing.T) {
	t.Parallel() // own emulator, store and environment map
	r := (&cli{t: t}).run("bench", "indicators", "--indicators", "600")
	var rep struct {
		ImportCalls, Imported, Throttled int
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); r.code != 0 || err != nil || rep.ImportCalls != 2 || rep.Imported != 600 || rep.Throttled != 0 {
		t.Errorf("bench indicators: exit %d %v %s %s", r.code, err, r.stdout, r.stderr)
	}
}
