package app

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/syncer"
)

// benchReport is what `bench sync` prints (JSON).
type benchReport struct {
	Machines          int                    `json:"machines"`
	RateLimits        string                 `json:"rateLimits"`
	EmulatorProcess   string                 `json:"emulatorProcess"`
	GenerateSeconds   float64                `json:"generateSeconds"`
	SyncWallSeconds   float64                `json:"syncWallSeconds"`
	Status            mdebridge.Status       `json:"status"`
	Steps             []mdebridge.StepResult `json:"steps"`
	ClientAPICalls    int                    `json:"clientApiCalls"`
	EmulatorCalls     map[string]int         `json:"emulatorCalls"`
	Throttled         int                    `json:"throttled"`
	MachinesPerSecond float64                `json:"machinesPerSecond"`
	PeakRSSMB         float64                `json:"peakRssMB"`
	// The exposure part (issue 3).
	VulnsPerMachine            float64            `json:"vulnsPerMachine"`
	ExportPrepareSeconds       float64            `json:"exportPrepareSeconds"`
	MDECalls                   int                `json:"mdeCalls"`
	BlobDownloads              int                `json:"blobDownloads"`
	StepWallSeconds            map[string]float64 `json:"stepWallSeconds"`
	PeakRSSMBByStep            map[string]float64 `json:"peakRssMBByStep"`
	VulnerabilityRows          int                `json:"vulnerabilityRows"`
	VulnerabilityRowsPerSecond float64            `json:"vulnerabilityRowsPerSecond"`
	SoftwareRowsPerSecond      float64            `json:"softwareRowsPerSecond"`
	JupiterOneStyle            *perMachineCost    `json:"jupiterOneStyle,omitempty"`
	Incremental                *benchCycle        `json:"incremental,omitempty"`
	Cores                      int                `json:"cores"`
	GoVersion                  string             `json:"goVersion"`
}

// perMachineCost is what the per-machine pattern of the best-known open
// integration (JupiterOne: one vulnerabilities and one logon-users call per
// machine, $top=750 pages of machines; peers.md §1.5) would cost the same
// tenant.
type perMachineCost struct {
	Calls int `json:"calls"`
	// MinimumHours is the least time Microsoft's limits allow for it: the
	// per-machine vulnerabilities API allows 1,500 calls an hour, and so
	// does logonusers.
	MinimumHours float64 `json:"minimumHours"`
}

// benchCycle is a sync after the measured one, when nothing changed.
type benchCycle struct {
	WallSeconds float64        `json:"wallSeconds"`
	MDECalls    int            `json:"mdeCalls"`
	Calls       map[string]int `json:"calls"`
	// ExposureCalls are the calls of the exposure steps (cves,
	// vulnerabilities, software).
	ExposureCalls int `json:"exposureCalls"`
}

func cmdBench(ctx context.Context, env *Env, g *globals, args []string) int {
	if len(args) > 0 && args[0] == "alerts" {
		return benchAlerts(ctx, env, g, args[1:]) // cmd_bench_alerts.go
	}
	if len(args) > 0 && responseBenches[args[0]] != nil {
		return responseBenches[args[0]](ctx, env, g, args[1:])
	}
	if len(args) == 0 || args[0] != "sync" {
		return usageError(env, "bench", "say what to measure: bench sync, alerts, isolate, scan or indicators")
	}
	fs := flag.NewFlagSet("bench sync", flag.ContinueOnError)
	machines := fs.Int("machines", 100000, "machines in the emulated tenant")
	seed := fs.Int64("seed", 1, "seed of the emulated tenant")
	rateLimits := fs.String("rate-limits", "off", "emulator rate limits: real, off or xK")
	inProcess := fs.Bool("in-process", false, "run the emulator inside this process (peak RSS then includes it)")
	keep := fs.String("dir", "", "keep the emulator state and the SQLite file in this directory (default: a temporary one)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sync to this file")
	vulns := fs.Float64("vulns-per-machine", 50, "average vulnerability rows per machine in the emulated tenant")
	incremental := fs.Bool("incremental", true, "after the measured sync, run one more (nothing changed) and count its calls")
	if ok, code := parseFlags(fs, env, g, args[1:], "bench sync [--machines N] [--vulns-per-machine N] [--rate-limits off|real|xK] [--in-process] [--dir DIR]"); !ok {
		return code
	}
	limits, err := emulator.ParseRateLimits(*rateLimits)
	if err != nil {
		return usageError(env, "bench", "--rate-limits: %v", err)
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mdebridge-bench-"); err != nil {
			return fail(env, "bench", err)
		}
		defer os.RemoveAll(dir)
	}
	rep := benchReport{Machines: *machines, RateLimits: *rateLimits, Cores: runtime.NumCPU(), GoVersion: runtime.Version(), VulnsPerMachine: *vulns}
	logger, err := newLogger(env, g, "warn", "text")
	if err != nil {
		return usageError(env, "bench", "%v", err)
	}

	var emuURL, configFile string
	if *inProcess {
		rep.EmulatorProcess = "in-process"
		emu, err := startEmulator(ctx, emulatorOptions{addr: "127.0.0.1:0", stateDir: dir, machines: *machines, seed: *seed, limits: limits, log: logger, vulnsPerMachine: *vulns})
		if err != nil {
			return fail(env, "bench", err)
		}
		defer emu.stop()
		emuURL, configFile, rep.GenerateSeconds = emu.url, emu.configFile, emu.generated.Seconds()
	} else {
		rep.EmulatorProcess = "child"
		ready, stop, err := startChildEmulator(ctx, dir, *machines, *seed, *rateLimits, *vulns)
		if err != nil {
			return fail(env, "bench", err)
		}
		defer stop()
		emuURL, configFile, rep.GenerateSeconds = ready.URL, ready.Config, ready.GenerateSeconds
	}

	g.config = configFile
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "bench", err)
	}
	defer a.Close()
	a.Config.Store.Path = filepath.Join(dir, "bench.db")
	os.Remove(a.Config.Store.Path)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(env, "bench", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(env, "bench", err)
		}
		defer pprof.StopCPUProfile()
	}
	// The service has its export files ready before it is asked; so does
	// the emulator, before the clock starts.
	prepared := time.Now()
	if err := emulatorControl(ctx, a, "POST", emuURL+"/_emulator/exports", nil); err != nil {
		return fail(env, "bench", err)
	}
	rep.ExportPrepareSeconds = time.Since(prepared).Seconds()
	if err := emulatorControl(ctx, a, "DELETE", emuURL+"/_emulator/stats", nil); err != nil {
		return fail(env, "bench", err)
	}
	rss := startRSSSampler(ctx)
	start := time.Now()
	run, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "bench", Full: true})
	samples := rss()
	if err != nil {
		return fail(env, "bench", err)
	}
	rep.SyncWallSeconds = time.Since(start).Seconds()
	rep.PeakRSSMBByStep = map[string]float64{}
	for _, s := range run.Steps {
		end := s.StartedAt.Add(time.Duration(s.DurationMS) * time.Millisecond)
		for _, x := range samples {
			if !x.at.Before(s.StartedAt) && !x.at.After(end) {
				rep.PeakRSSMBByStep[s.Name] = max(rep.PeakRSSMBByStep[s.Name], x.mb)
			}
		}
	}
	rep.Status, rep.Steps = run.Status, run.Steps
	rep.StepWallSeconds = map[string]float64{}
	for _, s := range run.Steps {
		rep.ClientAPICalls += s.APICalls
		secs := float64(s.DurationMS) / 1000
		rep.StepWallSeconds[s.Name] = secs
		if secs <= 0 {
			continue
		}
		switch s.Name {
		case "machines":
			rep.MachinesPerSecond = float64(s.Items) / secs
		case "vulnerabilities":
			rep.VulnerabilityRows, rep.VulnerabilityRowsPerSecond = s.Items, float64(s.Items)/secs
		case "software":
			rep.SoftwareRowsPerSecond = float64(s.Items) / secs
		}
	}
	rep.PeakRSSMB = peakRSSMB()
	stats, err := emulatorStats(ctx, a, emuURL)
	if err != nil {
		return fail(env, "bench", err)
	}
	rep.EmulatorCalls, rep.Throttled = stats.Calls, stats.Throttled
	rep.MDECalls, rep.BlobDownloads = countCalls(stats.Calls)
	m := *machines
	rep.JupiterOneStyle = &perMachineCost{Calls: 2*m + (m+1+749)/750, MinimumHours: float64(m) / 1500}
	if *incremental && run.Status == mdebridge.StatusSucceeded {
		if err := emulatorControl(ctx, a, "DELETE", emuURL+"/_emulator/stats", nil); err != nil {
			return fail(env, "bench", err)
		}
		start := time.Now()
		again, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "bench"})
		if err != nil {
			return fail(env, "bench", err)
		}
		stats, err := emulatorStats(ctx, a, emuURL)
		if err != nil {
			return fail(env, "bench", err)
		}
		cyc := &benchCycle{WallSeconds: time.Since(start).Seconds(), Calls: map[string]int{}}
		cyc.MDECalls, _ = countCalls(stats.Calls)
		for _, s := range again.Steps {
			cyc.Calls[s.Name] = s.APICalls
			switch s.Name {
			case "cves", "vulnerabilities", "software":
				cyc.ExposureCalls += s.APICalls
			}
		}
		rep.Incremental = cyc
	}
	writeJSON(env.Stdout, rep)
	return runExitCode(run)
}

type childReady struct {
	URL             string  `json:"url"`
	Config          string  `json:"config"`
	GenerateSeconds float64 `json:"generateSeconds"`
}

// startChildEmulator runs `mdebridge emulate` as a child process, so that
// the figures measured here are mdebridge's own.
func startChildEmulator(ctx context.Context, dir string, machines int, seed int64, rateLimits string, vulns float64) (childReady, func(), error) {
	var ready childReady
	exe, err := os.Executable()
	if err != nil {
		return ready, nil, err
	}
	readyFile := filepath.Join(dir, "ready.json")
	cmd := exec.CommandContext(ctx, exe, "emulate", "--addr", "127.0.0.1:0", "--state-dir", dir,
		"--machines", strconv.Itoa(machines), "--seed", strconv.FormatInt(seed, 10), "--rate-limits", rateLimits,
		"--ready-file", readyFile, "--log-level", "error", "--vulns-per-machine", strconv.FormatFloat(vulns, 'f', -1, 64))
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	if err := cmd.Start(); err != nil {
		return ready, nil, fmt.Errorf("start the emulator: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			exited <- err
			return ready, nil, fmt.Errorf("the emulator exited before it was ready: %w", err)
		case <-ctx.Done():
			stop()
			return ready, nil, ctx.Err()
		case <-tick.C:
			data, err := os.ReadFile(readyFile)
			if err != nil {
				continue
			}
			if err := json.Unmarshal(data, &ready); err != nil {
				stop()
				return ready, nil, fmt.Errorf("emulator ready file: %w", err)
			}
			return ready, stop, nil
		}
	}
}

// emulatorStats reads the emulator's call counts through its control API.
func emulatorStats(ctx context.Context, a *App, baseURL string) (emulator.Stats, error) {
	var st emulator.Stats
	client, err := a.HTTPClient()
	if err != nil {
		return st, err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/_emulator/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("emulator stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// countCalls splits the emulator's call counts into MDE API calls and blob
// downloads (token requests are neither).
func countCalls(calls map[string]int) (mde, blob int) {
	for k, n := range calls {
		switch {
		case strings.Contains(k, " /api/"):
			mde += n
		case strings.Contains(k, " /tvm-export/"):
			blob += n
		}
	}
	return mde, blob
}

// emulatorControl calls the emulator's control API.
func emulatorControl(ctx context.Context, a *App, method, url string, body io.Reader) error {
	client, err := a.HTTPClient()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("emulator %s %s: %s", method, url, resp.Status)
	}
	return nil
}

type rssSample struct {
	at time.Time
	mb float64
}

// startRSSSampler records this process's resident set size every 100 ms
// until the returned function is called, which returns the samples.
func startRSSSampler(ctx context.Context) func() []rssSample {
	ctx, cancel := context.WithCancel(ctx)
	var samples []rssSample
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				samples = append(samples, rssSample{now, procStatusMB("VmRSS:")})
			}
		}
	}()
	return func() []rssSample {
		cancel()
		<-done
		return samples
	}
}

// peakRSSMB is this process's peak resident set size (Linux VmHWM).
func peakRSSMB() float64 { return procStatusMB("VmHWM:") }

// procStatusMB reads a memory figure of /proc/self/status in MB.
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
