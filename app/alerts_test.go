package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/app"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// withIncidents appends an incidents section to the CLI's configuration:
// fast polls, a JSON Lines file, and the extra YAML given.
func (c *cli) withIncidents(extraSinks string) string {
	c.t.Helper()
	events := filepath.Join(filepath.Dir(c.config), "events.jsonl")
	section := fmt.Sprintf(`incidents:
  poll_interval: 1s
  sweep_interval: 5s
  sinks:
    - name: file
      type: file
      path: %s
%s`, events, extraSinks)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(section); err != nil {
		c.t.Fatal(err)
	}
	return events
}

// serving is mdebridge serve running in this process.
type serving struct {
	url    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	code   int
	stderr *lockedBuffer
}

func (c *cli) serve() *serving {
	c.t.Helper()
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(c.t.Context())
	s := &serving{cancel: cancel, stderr: &lockedBuffer{}}
	env := &app.Env{Stdout: &lockedBuffer{}, Stderr: s.stderr, Getenv: func(k string) string { return c.env[k] },
		Ready: func(name, addr string) { ready <- addr }}
	s.wg.Go(func() {
		s.code = app.Run(ctx, env, []string{"--config", c.config, "serve", "--addr", "127.0.0.1:0", "--no-schedule"})
	})
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case <-time.After(30 * time.Second):
		cancel()
		c.t.Fatalf("serve did not start: %s", s.stderr.String())
	}
	c.t.Cleanup(s.stop)
	return s
}

func (s *serving) stop() {
	s.cancel()
	s.wg.Wait()
}

// eventLine is what tests read of an event line.
type eventLine struct {
	Event struct {
		ID       string `json:"id"`
		Sequence int64  `json:"sequence"`
		Action   string `json:"action"`
	} `json:"event"`
	Mdebridge struct {
		Event struct{ Kind, Origin string } `json:"event"`
		Alert struct {
			ID             string    `json:"id"`
			LastUpdateTime time.Time `json:"lastUpdateTime"`
		} `json:"alert"`
	} `json:"mdebridge"`
}

func readEvents(t *testing.T, path string) []eventLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []eventLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var e eventLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type incidentJSON struct {
	ID             int64    `json:"id"`
	Status         string   `json:"status"`
	AssignedTo     string   `json:"assignedTo"`
	Severity       string   `json:"severity"`
	AlertIDs       []string `json:"alertIds"`
	Classification string   `json:"classification"`
	Machines       []string `json:"machines"`
}

func (c *cli) incidents() []incidentJSON {
	c.t.Helper()
	var incs []incidentJSON
	if err := json.Unmarshal([]byte(c.mustRun("incidents", "list", "-o", "json")), &incs); err != nil {
		c.t.Fatal(err)
	}
	return incs
}

// TestServeTurnsAlertsIntoIncidents is issue 4's "done when": with serve
// running, 3,000 alerts injected in one call with a shared timestamp each
// appear exactly once in incidents list -o json, and updates injected
// afterwards are reflected there; a webhook that answers 500 sends its
// events to the dead-letter file without holding up the file sink.
func TestServeTurnsAlertsIntoIncidents(t *testing.T) {
	n := 3000
	if raceEnabled {
		n = 300 // the same path, at the race detector's pace
	}
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	c := newCLI(t, emu, emu.App)
	var hookCalls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookCalls.Add(1)
		w.WriteHeader(500)
	}))
	defer hook.Close()
	dead := filepath.Join(t.TempDir(), "dead.jsonl")
	events := c.withIncidents(fmt.Sprintf(`    - name: siem
      type: webhook
      url: %s/hook
      max_attempts: 2
      timeout: 1s
      concurrency: 16
      dead_letter: %s
`, hook.URL, dead))
	c.serve()

	burst := emu.AddAlerts(t, emulator.AlertSpec{Count: n, SharedTimestamp: true})
	odd := emu.AddAlerts(t, emulator.AlertSpec{Count: 1, UnknownMachine: true, Severity: "Critical", Category: "QuantumIntrusion"})
	waitFor(t, "every alert as an incident", 2*time.Minute, func() bool { return len(c.incidents()) == n+1 })
	incs := c.incidents()
	seen := map[string]int{}
	for _, inc := range incs {
		for _, id := range inc.AlertIDs {
			seen[id]++
		}
	}
	for _, s := range append(burst, odd...) {
		if seen[s.ID] != 1 {
			t.Fatalf("alert %s is in %d incidents", s.ID, seen[s.ID])
		}
	}

	// Updates made in MDE afterwards show.
	var ids []string
	for _, s := range burst[:50] {
		ids = append(ids, s.ID)
	}
	emu.ChangeAlerts(t, emulator.AlertChange{IDs: ids, Status: "InProgress", AssignedTo: "tier2@contoso.com"})
	waitFor(t, "the updates", time.Minute, func() bool {
		n := 0
		for _, inc := range c.incidents() {
			if inc.Status == "InProgress" && inc.AssignedTo == "tier2@contoso.com" {
				n++
			}
		}
		return n == 50
	})
	var oddInc incidentJSON
	for _, inc := range c.incidents() {
		if len(inc.AlertIDs) == 1 && inc.AlertIDs[0] == odd[0].ID {
			oddInc = inc
		}
	}
	if oddInc.Severity != "Critical" || len(oddInc.Machines) != 1 {
		t.Errorf("an alert with an undocumented severity on an unknown machine: %+v", oddInc)
	}

	// The file got every event once; the failing webhook's went to its
	// dead-letter file (it is slower: two attempts each).
	waitFor(t, "the file sink", time.Minute, func() bool { return len(readEvents(t, events)) == n+1+50 })
	evs := readEvents(t, events)
	ids2 := map[string]bool{}
	creates := map[string]int{}
	for _, e := range evs {
		if ids2[e.Event.ID] {
			t.Fatalf("event %s written twice", e.Event.ID)
		}
		ids2[e.Event.ID] = true
		if e.Mdebridge.Event.Kind == "create" {
			creates[e.Mdebridge.Alert.ID]++
		}
	}
	if len(creates) != n+1 {
		t.Errorf("%d creates", len(creates))
	}
	waitFor(t, "the dead-letter file", 2*time.Minute, func() bool {
		data, _ := os.ReadFile(dead)
		return bytes.Count(data, []byte("\n")) >= 10
	})
	if hookCalls.Load() < 20 {
		t.Errorf("the webhook was called %d times", hookCalls.Load())
	}
}

// TestIncidentCommandsMirrorToMDE: a change made with the CLI reaches the
// MDE alert and the event stream; show, comment, alerts list/show work.
func TestIncidentCommandsMirrorToMDE(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	c := newCLI(t, emu, emu.App)
	events := c.withIncidents("")
	st := emu.AddAlerts(t, emulator.AlertSpec{Count: 3})
	c.serve()
	waitFor(t, "3 incidents", time.Minute, func() bool { return len(c.incidents()) == 3 })
	var id int64
	for _, inc := range c.incidents() {
		if inc.AlertIDs[0] == st[0].ID {
			id = inc.ID
		}
	}
	out := c.mustRun("incidents", "update", fmt.Sprint(id), "--status", "Resolved", "--classification", "TruePositive", "--determination", "Malware",
		"--assign", "ana@contoso.com")
	if !strings.Contains(out, "Resolved") || !strings.Contains(out, "MDE has the change") {
		t.Errorf("update: %s", out)
	}
	c.mustRun("incidents", "comment", fmt.Sprint(id), "contained", "and", "reimaged")
	resp, body := emu.Get(t, "/api/alerts/"+st[0].ID, emu.AppToken(t))
	var a map[string]any
	json.Unmarshal(body, &a)
	if resp.StatusCode != 200 || a["status"] != "Resolved" || a["determination"] != "Malware" || !strings.Contains(fmt.Sprint(a["comments"]), "contained and reimaged") {
		t.Errorf("the MDE alert: %s", body)
	}
	show := c.mustRun("incidents", "show", fmt.Sprint(id))
	for _, want := range []string{"Resolved", "TruePositive Malware", "ana@contoso.com", "contained and reimaged", st[0].ID} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	// The changes made here are two events; their echo from MDE is none.
	waitFor(t, "the changes as events", 30*time.Second, func() bool { return len(readEvents(t, events)) >= 5 })
	time.Sleep(3 * time.Second) // polls that see the echo
	var origins []string
	for _, e := range readEvents(t, events) {
		if e.Mdebridge.Alert.ID == st[0].ID {
			origins = append(origins, e.Mdebridge.Event.Origin)
		}
	}
	if strings.Join(origins, ",") != "mde,mdebridge,mdebridge" {
		t.Errorf("events of the changed alert by origin: %v", origins)
	}

	// Alerts by entity, and one alert's evidence.
	var list []map[string]any
	json.Unmarshal([]byte(c.mustRun("alerts", "list", "-o", "json", "--incident", fmt.Sprint(id))), &list)
	if len(list) != 1 || list[0]["id"] != st[0].ID {
		t.Fatalf("alerts of the incident: %v", list)
	}
	ev := list[0]["evidence"].([]any)[0].(map[string]any)
	for _, k := range []string{"sha1", "ipAddress", "accountName"} {
		if v, ok := ev[k].(string); ok && v != "" {
			if got := c.mustRun("alerts", "list", "--entity", v); !strings.Contains(got, st[0].ID) {
				t.Errorf("alerts list --entity %s:\n%s", v, got)
			}
			break
		}
	}
	if got := c.mustRun("alerts", "show", st[0].ID); !strings.Contains(got, "Evidence:") {
		t.Errorf("alerts show:\n%s", got)
	}
	for _, bad := range [][]string{{"incidents", "update", fmt.Sprint(id), "--determination", "Clean"}, {"incidents", "show", "999999"}} {
		if r := c.run(bad...); r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: exit %d %q", bad, r.code, r.stderr)
		}
	}
	for _, bad := range [][]string{{"incidents"}, {"incidents", "update", "x", "--status", "New"}, {"incidents", "update", "1"}, {"alerts", "frob"}} {
		if r := c.run(bad...); r.code != 2 {
			t.Errorf("%v: exit %d", bad, r.code)
		}
	}
}

// TestKilledServeMidBurst kills a real mdebridge serve (SIGKILL) while it
// stores a burst, restarts it, and finds every alert once and every update
// once in the event file.
func TestKilledServeMidBurst(t *testing.T) {
	volume(t)
	bin := filepath.Join(t.TempDir(), "mdebridge")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/mdebridge").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	emu := emulatortest.New(t, emulatortest.WithMachines(50))
	c := newCLI(t, emu, emu.App)
	events := c.withIncidents("")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--config", c.config, "serve", "--addr", "127.0.0.1:0", "--no-schedule")
		cmd.Env = append(os.Environ(), "MDEBRIDGE_INCIDENTS_PAGE_SIZE=500", "MDEBRIDGE_INCIDENTS_SWEEP_INTERVAL=1m")
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	want := map[string]int{}
	for _, s := range emu.AddAlerts(t, emulator.AlertSpec{Count: 6000, SharedTimestamp: true}) {
		want[s.ID] = 1
	}
	srv := start()
	waitFor(t, "the first events", time.Minute, func() bool { return len(readEvents(t, events)) > 0 })
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	if got := len(readEvents(t, events)); got >= 6000 {
		t.Fatalf("the burst was done before the kill (%d events)", got)
	}
	srv = start()
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitFor(t, "every alert after the restart", 2*time.Minute, func() bool { return len(readEvents(t, events)) >= 6000 })
	var ids []string
	for id := range want {
		if len(ids) < 300 {
			ids = append(ids, id)
		}
	}
	emu.ChangeAlerts(t, emulator.AlertChange{IDs: ids, Comment: "after the restart"})
	for _, id := range ids {
		want[id]++
	}
	waitFor(t, "the updates", time.Minute, func() bool { return len(readEvents(t, events)) >= 6300 })
	time.Sleep(2 * time.Second) // anything extra would show now
	got := map[string]int{}
	seen := map[string]bool{}
	for _, e := range readEvents(t, events) {
		if seen[e.Event.ID] {
			t.Fatalf("event %s delivered twice", e.Event.ID)
		}
		seen[e.Event.ID] = true
		got[e.Mdebridge.Alert.ID]++
	}
	missed, extra := 0, 0
	for id, n := range want {
		switch {
		case got[id] < n:
			missed++
		case got[id] > n:
			extra++
		}
	}
	if missed > 0 || extra > 0 || len(got) != len(want) {
		t.Errorf("%d alerts missed an event, %d got too many, %d alerts in all (want %d)", missed, extra, len(got), len(want))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
