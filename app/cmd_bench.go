package app

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
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
	Cores             int                    `json:"cores"`
	GoVersion         string                 `json:"goVersion"`
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
	if ok, code := parseFlags(fs, env, g, args[1:], "bench sync [--machines N] [--rate-limits off|real|xK] [--in-process] [--dir DIR]"); !ok {
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
	rep := benchReport{Machines: *machines, RateLimits: *rateLimits, Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	logger, err := newLogger(env, g, "warn", "text")
	if err != nil {
		return usageError(env, "bench", "%v", err)
	}

	var emuURL, configFile string
	if *inProcess {
		rep.EmulatorProcess = "in-process"
		emu, err := startEmulator(ctx, emulatorOptions{addr: "127.0.0.1:0", stateDir: dir, machines: *machines, seed: *seed, limits: limits, log: logger})
		if err != nil {
			return fail(env, "bench", err)
		}
		defer emu.stop()
		emuURL, configFile, rep.GenerateSeconds = emu.url, emu.configFile, emu.generated.Seconds()
	} else {
		rep.EmulatorProcess = "child"
		ready, stop, err := startChildEmulator(ctx, dir, *machines, *seed, *rateLimits)
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
	start := time.Now()
	run, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "bench", Full: true})
	if err != nil {
		return fail(env, "bench", err)
	}
	rep.SyncWallSeconds = time.Since(start).Seconds()
	rep.Status, rep.Steps = run.Status, run.Steps
	for _, s := range run.Steps {
		rep.ClientAPICalls += s.APICalls
		if s.Name == "machines" && s.DurationMS > 0 {
			rep.MachinesPerSecond = float64(s.Items) / (float64(s.DurationMS) / 1000)
		}
	}
	rep.PeakRSSMB = peakRSSMB()
	stats, err := emulatorStats(ctx, a, emuURL)
	if err != nil {
		return fail(env, "bench", err)
	}
	rep.EmulatorCalls, rep.Throttled = stats.Calls, stats.Throttled
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
func startChildEmulator(ctx context.Context, dir string, machines int, seed int64, rateLimits string) (childReady, func(), error) {
	var ready childReady
	exe, err := os.Executable()
	if err != nil {
		return ready, nil, err
	}
	readyFile := filepath.Join(dir, "ready.json")
	cmd := exec.CommandContext(ctx, exe, "emulate", "--addr", "127.0.0.1:0", "--state-dir", dir,
		"--machines", strconv.Itoa(machines), "--seed", strconv.FormatInt(seed, 10), "--rate-limits", rateLimits,
		"--ready-file", readyFile, "--log-level", "error")
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
			return ready, nil, fmt.Errorf("the emulator exited before it was ready: %v", err)
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

// peakRSSMB is this process's peak resident set size (Linux VmHWM).
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
