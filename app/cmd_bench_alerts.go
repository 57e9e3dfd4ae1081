package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

// alertBenchReport is what `bench alerts` prints (JSON).
type alertBenchReport struct {
	RateLimits string `json:"rateLimits"`
	Settings   string `json:"settings"`
	Machines   int    `json:"machines"`
	Initial    int    `json:"initialAlerts"`
	Idle       struct {
		Seconds      float64 `json:"seconds"`
		Polls        int     `json:"polls"`
		Calls        int     `json:"calls"`
		CallsPerPoll float64 `json:"callsPerPoll"`
	} `json:"idle"`
	Latency struct {
		Samples int     `json:"samples"`
		Creates int     `json:"creates"`
		Updates int     `json:"updates"`
		Missed  int     `json:"missed"`
		P50     float64 `json:"p50Seconds"`
		P90     float64 `json:"p90Seconds"`
		P99     float64 `json:"p99Seconds"`
		Max     float64 `json:"maxSeconds"`
	} `json:"latency"`
	Burst *burstReport `json:"burst,omitempty"`
	// What the emulator saw of the whole run.
	EmulatorCalls map[string]int `json:"emulatorCalls"`
	Throttled     int            `json:"throttled"`
	ServePeakRSS  float64        `json:"servePeakRssMB"`
	Cores         int            `json:"cores"`
	GoVersion     string         `json:"goVersion"`
}

type burstReport struct {
	Alerts            int     `json:"alerts"`
	SharingOneStamp   int     `json:"sharingOneTimestamp"`
	Updates           int     `json:"updates"`
	InjectSeconds     float64 `json:"injectSeconds"`
	Killed            bool    `json:"killedWithSIGKILL"`
	EventsBeforeKill  int     `json:"eventsBeforeKill,omitempty"`
	Missed            int     `json:"missedAlerts"`
	DuplicateCreates  int     `json:"duplicateCreates"`
	UpdatesDelivered  int     `json:"updatesDelivered"`
	UpdatesMissed     int     `json:"updatesMissed"`
	UpdatesRepeated   int     `json:"updatesRepeated"`
	OutOfOrder        int     `json:"alertsOutOfOrder"`
	DuplicateEvents   int     `json:"duplicateEvents"`
	DrainSeconds      float64 `json:"drainSeconds"`
	EventsPerSecond   float64 `json:"eventsPerSecond"`
	SweepsDuringBurst int     `json:"-"`
}

func benchAlerts(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("bench alerts", flag.ContinueOnError)
	machines := fs.Int("machines", 2000, "machines in the emulated tenant")
	initial := fs.Int("alerts", 500, "alerts the tenant starts with (the first poll's backlog)")
	samples := fs.Int("samples", 120, "alerts created or updated one at a time, about a second apart, for the latency")
	idle := fs.Duration("idle", 30*time.Second, "how long to watch idle polls")
	burst := fs.Int("burst", 20000, "alerts of the burst, over one minute (0: no burst)")
	shared := fs.Int("shared", 5000, "of which sharing one timestamp")
	updates := fs.Int("updates", 2000, "updates during the burst, each to a distinct alert already delivered")
	kill := fs.Bool("kill", false, "kill serve with SIGKILL mid-burst and restart it")
	rateLimits := fs.String("rate-limits", "real", "emulator rate limits: real, off or xK")
	keep := fs.String("dir", "", "keep the state, the SQLite file and the event file in this directory (default: a temporary one)")
	if ok, code := parseFlags(fs, env, g, args, "bench alerts [--samples N] [--burst N --shared N --updates N] [--kill] [--rate-limits real|off|xK]"); !ok {
		return code
	}
	limits, err := emulator.ParseRateLimits(*rateLimits)
	if err != nil {
		return usageError(env, "bench alerts", "--rate-limits: %v", err)
	}
	if *burst > 0 && (*shared > *burst || *updates > *burst) {
		return usageError(env, "bench alerts", "--shared and --updates must not exceed --burst")
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mdebridge-bench-alerts-"); err != nil {
			return fail(env, "bench alerts", err)
		}
		defer os.RemoveAll(dir)
	}
	logger, err := newLogger(env, g, "warn", "text")
	if err != nil {
		return usageError(env, "bench alerts", "%v", err)
	}
	emu, err := startEmulator(ctx, emulatorOptions{addr: "127.0.0.1:0", stateDir: dir, machines: *machines, seed: 1, limits: limits, log: logger})
	if err != nil {
		return fail(env, "bench alerts", err)
	}
	defer emu.stop()
	if *initial > 0 {
		// Recent ones, so that all of them are within the first fetch.
		if _, err := emu.server.Tenant().AddAlerts(emulator.AlertSpec{Count: *initial, Seed: 1}); err != nil {
			return fail(env, "bench alerts", err)
		}
	}
	events := filepath.Join(dir, "events.jsonl")
	os.Remove(events)
	os.Remove(filepath.Join(dir, "mdebridge.db"))
	f, err := os.OpenFile(emu.configFile, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fmt.Fprintf(f, "incidents:\n  sinks:\n    - type: file\n      path: %s\n      max_size_mb: 100000\n", events)
		f.Close()
	}
	if err != nil {
		return fail(env, "bench alerts", err)
	}
	b := &alertBench{env: env, emu: emu, config: emu.configFile, events: newEventTail(events)}
	rep := alertBenchReport{RateLimits: *rateLimits, Machines: *machines, Initial: *initial, Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Settings: "defaults: poll 5s, sweep 1m, overlap 10m, page 10000"}
	if err := b.start(ctx); err != nil {
		return fail(env, "bench alerts", err)
	}
	defer b.stop()
	fmt.Fprintf(env.Stderr, "bench alerts: waiting for the first poll's %d alerts…\n", *initial)
	if !b.events.waitCreates(ctx, *initial, 5*time.Minute) {
		return fail(env, "bench alerts", fmt.Errorf("the first %d alerts did not arrive", *initial))
	}

	fmt.Fprintf(env.Stderr, "bench alerts: idle polls for %s…\n", *idle)
	if err := b.measureIdle(ctx, *idle, &rep); err != nil {
		return fail(env, "bench alerts", err)
	}
	fmt.Fprintf(env.Stderr, "bench alerts: latency over %d changes…\n", *samples)
	b.measureLatency(ctx, *samples, &rep)
	if *burst > 0 {
		fmt.Fprintf(env.Stderr, "bench alerts: a burst of %d alerts (%d sharing one timestamp) and %d updates in a minute%s…\n",
			*burst, *shared, *updates, map[bool]string{true: ", serve killed mid-burst"}[*kill])
		rep.Burst = b.runBurst(ctx, *burst, *shared, *updates, *kill)
	}
	rep.ServePeakRSS = b.peakRSS()
	st := emu.server.Stats()
	rep.EmulatorCalls, rep.Throttled = st.Calls, st.Throttled
	writeJSON(env.Stdout, rep)
	if rep.Latency.Missed > 0 || rep.Burst != nil && (rep.Burst.Missed+rep.Burst.DuplicateCreates+rep.Burst.UpdatesMissed+rep.Burst.UpdatesRepeated+rep.Burst.OutOfOrder+rep.Burst.DuplicateEvents) > 0 {
		return ExitFailure
	}
	return ExitOK
}

// alertBench runs serve as a child process against the emulator.
type alertBench struct {
	env    *Env
	emu    *runningEmulator
	config string
	events *eventTail
	mu     sync.Mutex
	serve  *exec.Cmd
	url    string
	exited chan error
	rss    float64
}

var servingLine = regexp.MustCompile(`mdebridge serving (http://\S+)`)

// start runs `mdebridge serve` with the bench's configuration and waits
// for it to listen.
func (b *alertBench) start(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "--config", b.config, "serve", "--addr", "127.0.0.1:0", "--no-schedule")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				urls <- m[1]
				continue
			}
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				fmt.Fprintln(b.env.Stderr, "serve:", line)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case u := <-urls:
		b.mu.Lock()
		b.serve, b.url, b.exited = cmd, u, exited
		b.mu.Unlock()
		return nil
	case err := <-exited:
		return fmt.Errorf("serve exited at start: %w", err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("serve did not start")
	}
}

// kill ends serve with SIGKILL.
func (b *alertBench) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rss = max(b.rss, processPeakRSS(b.serve.Process.Pid))
	b.serve.Process.Kill()
	<-b.exited
}

// stop ends serve gracefully.
func (b *alertBench) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.serve == nil {
		return
	}
	b.serve.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		b.serve.Process.Kill()
		<-b.exited
	}
	b.serve = nil
}

func (b *alertBench) peakRSS() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.serve != nil {
		b.rss = max(b.rss, processPeakRSS(b.serve.Process.Pid))
	}
	return b.rss
}

// processPeakRSS is a process's peak resident set size (Linux VmHWM).
func processPeakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// polls reads serve's count of finished polls and sweeps from /metrics.
func (b *alertBench) polls(ctx context.Context) (int, error) {
	b.mu.Lock()
	u := b.url
	b.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, "GET", u+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0.0
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "mdebridge_incident_polls_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return int(n), sc.Err()
}

func (b *alertBench) measureIdle(ctx context.Context, d time.Duration, rep *alertBenchReport) error {
	time.Sleep(6 * time.Second) // let the catch-up end
	p0, err := b.polls(ctx)
	if err != nil {
		return err
	}
	c0 := b.emu.server.Stats().Calls["GET /api/alerts"]
	time.Sleep(d)
	p1, err := b.polls(ctx)
	if err != nil {
		return err
	}
	c1 := b.emu.server.Stats().Calls["GET /api/alerts"]
	rep.Idle.Seconds, rep.Idle.Polls, rep.Idle.Calls = d.Seconds(), p1-p0, c1-c0
	if rep.Idle.Polls > 0 {
		rep.Idle.CallsPerPoll = float64(rep.Idle.Calls) / float64(rep.Idle.Polls)
	}
	return nil
}

// measureLatency makes changes one at a time, about a second apart (a
// third of them updates of alerts already delivered), and times each from
// the change in MDE to its event in the file.
func (b *alertBench) measureLatency(ctx context.Context, n int, rep *alertBenchReport) {
	rng := rand.New(rand.NewPCG(7, 7))
	tenant := b.emu.server.Tenant()
	type sample struct {
		key alertVersion
		at  time.Time
	}
	var done []sample
	var made []string // alerts created by the samples
	updated := map[string]bool{}
	for i := range n {
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		// An update goes to an alert delivered and not updated before: two
		// changes within one poll would show as one.
		var delivered []string
		for _, id := range made {
			if !updated[id] && b.events.created(id) {
				delivered = append(delivered, id)
			}
		}
		var st []emulator.AlertStamp
		var err error
		if len(delivered) > 3 && rng.IntN(3) == 0 {
			id := delivered[rng.IntN(len(delivered))]
			updated[id] = true
			st, err = tenant.ChangeAlerts(emulator.AlertChange{IDs: []string{id}, Comment: fmt.Sprintf("latency sample %d", i)})
			rep.Latency.Updates++
		} else {
			st, err = tenant.AddAlerts(emulator.AlertSpec{Count: 1, Seed: int64(1000 + i)})
			rep.Latency.Creates++
			if err == nil {
				made = append(made, st[0].ID)
			}
		}
		if err != nil {
			fmt.Fprintln(b.env.Stderr, "bench alerts:", err)
			continue
		}
		done = append(done, sample{alertVersion{st[0].ID, st[0].LastUpdateTime.UnixNano()}, time.Now()})
	}
	deadline := time.Now().Add(60 * time.Second)
	var lat []float64
	for _, s := range done {
		for {
			if at, ok := b.events.seen(s.key); ok {
				lat = append(lat, at.Sub(s.at).Seconds())
				break
			}
			if time.Now().After(deadline) {
				rep.Latency.Missed++
				fmt.Fprintf(b.env.Stderr, "bench alerts: no event for %s at %s\n", s.key.id, time.Unix(0, s.key.v).UTC().Format(time.RFC3339Nano))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	slices.Sort(lat)
	rep.Latency.Samples = len(lat)
	if len(lat) > 0 {
		q := func(p float64) float64 { return round3(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		rep.Latency.P50, rep.Latency.P90, rep.Latency.P99, rep.Latency.Max = q(0.50), q(0.90), q(0.99), round3(lat[len(lat)-1])
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// runBurst injects the burst over one minute: the shared-stamp part at
// once, the rest in batches every 2 s, and updates of alerts already
// delivered from the sixth second on; then it waits for every event and
// checks the file.
func (b *alertBench) runBurst(ctx context.Context, total, shared, updates int, kill bool) *burstReport {
	r := &burstReport{Alerts: total, SharingOneStamp: shared, Updates: updates, Killed: kill}
	tenant := b.emu.server.Tenant()
	want := map[string][]int64{} // alert -> versions, in order
	var mu sync.Mutex
	record := func(st []emulator.AlertStamp) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range st {
			want[s.ID] = append(want[s.ID], s.LastUpdateTime.UnixNano())
		}
	}
	start := time.Now()
	before := b.events.count()
	st, err := tenant.AddAlerts(emulator.AlertSpec{Count: shared, SharedTimestamp: true, Seed: 99})
	if err != nil {
		fmt.Fprintln(b.env.Stderr, "bench alerts:", err)
	}
	record(st)
	rest, batches := total-shared, 30
	updated := map[string]bool{}
	left := updates
	for k := range batches {
		time.Sleep(time.Until(start.Add(time.Duration(k) * 2 * time.Second)))
		if n := rest/batches + map[bool]int{true: rest % batches}[k == 0]; n > 0 {
			st, err := tenant.AddAlerts(emulator.AlertSpec{Count: n, Seed: int64(100 + k)})
			if err != nil {
				fmt.Fprintln(b.env.Stderr, "bench alerts:", err)
			}
			record(st)
		}
		if kill && k == 12 {
			r.EventsBeforeKill = b.events.count() - before
			b.kill()
			if err := b.start(ctx); err != nil {
				fmt.Fprintln(b.env.Stderr, "bench alerts: restart serve:", err)
				return r
			}
		}
		if k >= 3 && left > 0 {
			// Updates go to alerts already delivered: an update made
			// before the alert was first read could not be seen apart.
			// Spread over the batches left, catching up when earlier
			// batches found fewer alerts delivered.
			n := (left + batches - k - 1) / (batches - k)
			var ids []string
			mu.Lock()
			for id := range want {
				if len(ids) == n {
					break
				}
				if !updated[id] && b.events.created(id) {
					ids = append(ids, id)
					updated[id] = true
				}
			}
			mu.Unlock()
			if len(ids) > 0 {
				st, err := tenant.ChangeAlerts(emulator.AlertChange{IDs: ids, Comment: "burst update"})
				if err != nil {
					fmt.Fprintln(b.env.Stderr, "bench alerts:", err)
				}
				record(st)
				left -= len(ids)
			}
		}
	}
	r.Updates = updates - left
	r.InjectSeconds = round3(time.Since(start).Seconds())
	expected := 0
	for _, vs := range want {
		expected += len(vs)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for b.events.count()-before < expected && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // anything extra shows now
	last := b.events.lastArrival()
	r.DrainSeconds = round3(last.Sub(start).Seconds())
	if r.DrainSeconds > 0 {
		r.EventsPerSecond = round3(float64(expected) / r.DrainSeconds)
	}
	got, dupEvents := b.events.byAlert()
	r.DuplicateEvents = dupEvents
	for id, vs := range want {
		g := got[id]
		if g == nil {
			g = &alertEvents{}
		}
		switch {
		case len(g.creates) == 0:
			r.Missed++
		case len(g.creates) > 1:
			r.DuplicateCreates++
		}
		if !slices.IsSorted(g.versions) {
			r.OutOfOrder++
		}
		for _, v := range vs[1:] {
			switch n := count(g.versions, v); {
			case n == 0:
				r.UpdatesMissed++
			case n > 1:
				r.UpdatesRepeated++
			default:
				r.UpdatesDelivered++
			}
		}
	}
	return r
}

func count(vs []int64, v int64) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}

// alertVersion names one version of an alert.
type alertVersion struct {
	id string
	v  int64 // lastUpdateTime, unix ns
}

// eventTail follows the event file and notes when each version arrives.
type eventTail struct {
	path string
	mu   sync.Mutex
	off  int64
	rest []byte
	when map[alertVersion]time.Time
	list []tailEvent
	ids  map[string]bool // event ids seen
	dups int
	made map[string]bool // alerts whose create arrived
	last time.Time
}

type tailEvent struct {
	id     string
	kind   string
	alert  string
	update int64
}

func newEventTail(path string) *eventTail {
	return &eventTail{path: path, when: map[alertVersion]time.Time{}, ids: map[string]bool{}, made: map[string]bool{}}
}

// read takes in what was appended since the last read.
func (t *eventTail) read() {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return
	}
	data, _ := io.ReadAll(f)
	t.off += int64(len(data))
	data = append(t.rest, data...)
	now := time.Now()
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		var ev struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
			Mdebridge struct {
				Event struct{ Kind string } `json:"event"`
				Alert struct {
					ID             string    `json:"id"`
					LastUpdateTime time.Time `json:"lastUpdateTime"`
				} `json:"alert"`
			} `json:"mdebridge"`
		}
		if json.Unmarshal(data[:i], &ev) == nil {
			e := tailEvent{id: ev.Event.ID, kind: ev.Mdebridge.Event.Kind, alert: ev.Mdebridge.Alert.ID, update: ev.Mdebridge.Alert.LastUpdateTime.UnixNano()}
			if t.ids[e.id] {
				t.dups++
			}
			t.ids[e.id] = true
			t.list = append(t.list, e)
			k := alertVersion{e.alert, e.update}
			if _, ok := t.when[k]; !ok {
				t.when[k] = now
			}
			if e.kind == "create" {
				t.made[e.alert] = true
			}
			t.last = now
		}
		data = data[i+1:]
	}
	t.rest = slices.Clone(data)
}

func (t *eventTail) seen(k alertVersion) (time.Time, bool) {
	t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.when[k]
	return at, ok
}

func (t *eventTail) created(id string) bool {
	t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.made[id]
}

func (t *eventTail) count() int {
	t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.list)
}

func (t *eventTail) lastArrival() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

func (t *eventTail) waitCreates(ctx context.Context, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t.read()
		t.mu.Lock()
		made := len(t.made)
		t.mu.Unlock()
		if made >= n {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

type alertEvents struct {
	creates  []int64
	versions []int64
}

// byAlert groups the file's events by alert, in file order, and counts
// event ids written more than once.
func (t *eventTail) byAlert() (map[string]*alertEvents, int) {
	t.read()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]*alertEvents{}
	for _, e := range t.list {
		a := out[e.alert]
		if a == nil {
			a = &alertEvents{}
			out[e.alert] = a
		}
		if e.kind == "create" {
			a.creates = append(a.creates, e.update)
		}
		a.versions = append(a.versions, e.update)
	}
	return out, t.dups
}
