package app

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/ratelimit"
	"github.com/mdebridge/mdebridge/syncer"
)

// The response benchmarks (issue 5's targets), each against a fresh
// emulated tenant served in this process over TLS:
//
//	bench isolate     isolate HOST --wait: how soon after the action ends it returns, and status calls against 1 + T/2
//	bench scan        a bulk scan at the rate limit, interrupted half way and resumed: 429s, duplicates
//	bench indicators  10,000 indicators from a CSV file: import calls and the 30/min limit

var responseBenches = map[string]func(context.Context, *Env, *globals, []string) int{
	"isolate":    benchIsolate,
	"scan":       benchScan,
	"indicators": benchIndicators,
}

// startBench starts an emulator in this process and an app configured for
// it, and syncs the given steps; stop undoes it all.
func startBench(ctx context.Context, env *Env, g *globals, name string, machines int, limits string, steps ...string) (*runningEmulator, *App, func(), error) {
	rl, err := emulator.ParseRateLimits(limits)
	if err != nil {
		return nil, nil, nil, err
	}
	dir, err := os.MkdirTemp("", "mdebridge-bench-"+name+"-")
	if err != nil {
		return nil, nil, nil, err
	}
	logger, err := newLogger(env, g, "warn", "text")
	if err != nil {
		return nil, nil, nil, err
	}
	emu, err := startEmulator(ctx, emulatorOptions{addr: "127.0.0.1:0", stateDir: dir, machines: machines, seed: 1, limits: rl, log: logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	g.config = emu.configFile
	a, err := newApp(env, g, "warn")
	if err != nil {
		emu.stop()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	a.Config.Store.Path = filepath.Join(dir, "bench.db")
	// The client paces itself by the same (scaled) windows the emulator enforces.
	if rl.Divisor > 1 {
		tokens, err := a.Tokens()
		if err != nil {
			return nil, nil, nil, err
		}
		hc, err := a.HTTPClient()
		if err != nil {
			return nil, nil, nil, err
		}
		c, err := mde.New(mde.Options{BaseURL: a.Cloud.MDEBaseURL, Tokens: tokens, HTTPClient: hc,
			Limits: func(api string) []ratelimit.Window {
				ws := mde.DocumentedLimits(api)
				for i := range ws {
					ws[i].Per /= time.Duration(rl.Divisor)
				}
				return ws
			}})
		if err != nil {
			return nil, nil, nil, err
		}
		a.client = c
	}
	stop := func() {
		a.Close()
		emu.stop()
		os.RemoveAll(dir)
	}
	if len(steps) > 0 {
		if _, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "bench", Full: true, Only: steps}); err != nil {
			stop()
			return nil, nil, nil, err
		}
	}
	return emu, a, stop, nil
}

type isolateRun struct {
	Operation          string  `json:"operation"`
	Status             string  `json:"status"`
	ActionSeconds      float64 `json:"actionSeconds"`      // creation to the end, as the emulator stamped it
	ReturnedAfterEndMS float64 `json:"returnedAfterEndMs"` // target: at most 1000
	StatusCalls        int     `json:"statusCalls"`        // GET /api/machineactions/{id}
	StatusCallBudget   int     `json:"statusCallBudget"`   // 1 + T/2
}

type isolateReport struct {
	Machines       int          `json:"machines"`
	PendingSeconds float64      `json:"pendingSeconds"`
	RunSeconds     float64      `json:"runSeconds"`
	LearnedFrom    int          `json:"learnedFromActions"` // succeeded actions of the type in the store before the first run
	Runs           []isolateRun `json:"runs"`
	Cores          int          `json:"cores"`
	GoVersion      string       `json:"goVersion"`
}

// benchIsolate measures isolate --wait against the target: returns
// within 1 s of the emulator finishing the action, with at most 1 + T/2
// status calls for an action of T seconds.
func benchIsolate(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("bench isolate", flag.ContinueOnError)
	machines := fs.Int("machines", 1000, "machines in the emulated tenant")
	pending := fs.Duration("pending", 5*time.Second, "how long actions stay Pending")
	run := fs.Duration("run", 15*time.Second, "how long actions then run")
	runs := fs.Int("runs", 4, "isolate and unisolate, alternately, this many times")
	cold := fs.Bool("cold", false, "do not sync the tenant's past actions first (nothing to learn durations from)")
	if ok, code := parseFlags(fs, env, g, args, "bench isolate [--machines N] [--pending 5s] [--run 15s] [--runs 4] [--cold]"); !ok {
		return code
	}
	steps := []string{"machines", "machine-actions"}
	if *cold {
		steps = steps[:1]
	}
	emu, a, stop, err := startBench(ctx, env, g, "isolate", *machines, "real", steps...)
	if err != nil {
		return fail(env, "bench isolate", err)
	}
	defer stop()
	b := emu.server.ActionBehaviour()
	b.PendingMs, b.RunMs = pending.Milliseconds(), run.Milliseconds()
	if err := emu.server.SetActionBehaviour(b); err != nil {
		return fail(env, "bench isolate", err)
	}
	store, _ := a.Store(ctx)
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "bench isolate", err)
	}
	ms, _, err := store.FindMachines(ctx, mdebridge.MachineFilter{HealthStatus: "Active", OSPlatform: "Windows11"})
	if err != nil || len(ms) == 0 {
		return fail(env, "bench isolate", fmt.Errorf("no active Windows 11 machine: %w", err))
	}
	m := ms[0]
	for _, cand := range ms {
		if cand.OnboardingStatus == "Onboarded" {
			m = cand
			break
		}
	}
	_, learned, _ := store.FindMachineActions(ctx, mdebridge.ActionFilter{Type: mdebridge.ActionIsolate, Status: mdebridge.ActionStatusSucceeded})
	rep := isolateReport{Machines: *machines, PendingSeconds: pending.Seconds(), RunSeconds: run.Seconds(), LearnedFrom: learned,
		Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	for i := range *runs {
		op := mdebridge.OpIsolate
		if i%2 == 1 {
			op = mdebridge.OpUnisolate
		}
		emu.server.ResetStats()
		out, err := svc.Respond(ctx, mdebridge.ActionRequest{Operation: op, Targets: []string{m.ComputerDNSName}, Comment: "bench", Actor: "bench", Wait: true}, nil)
		returned := time.Now()
		if err != nil {
			return fail(env, "bench isolate", err)
		}
		act := out.Outcomes[0].Action
		T := act.LastUpdateTime.Sub(act.CreationTime)
		rep.Runs = append(rep.Runs, isolateRun{Operation: op, Status: act.Status, ActionSeconds: T.Seconds(),
			ReturnedAfterEndMS: float64(returned.Sub(act.LastUpdateTime).Microseconds()) / 1000,
			StatusCalls:        emu.server.Stats().Calls["GET /api/machineactions/{id}"], StatusCallBudget: 1 + int(T.Seconds()/2)})
	}
	writeJSON(env.Stdout, rep)
	return ExitOK
}

type scanReport struct {
	Machines          int     `json:"machines"`
	RateLimits        string  `json:"rateLimits"`
	InterruptedAfter  int     `json:"interruptedAfter"`
	Resumed           bool    `json:"resumed"`
	ScanRequests      int     `json:"scanRequests"`  // POST runAntiVirusScan the emulator answered
	JoinedPending     int     `json:"joinedPending"` // machines whose pending scan was joined, not repeated
	Throttled         int     `json:"throttled"`
	Duplicates        int     `json:"duplicates"` // machines given a scan more than once
	Missing           int     `json:"missing"`    // machines given none
	WallSeconds       float64 `json:"wallSeconds"`
	RequestsPerMinute float64 `json:"requestsPerMinuteAtRealLimits"` // measured rate scaled back by the divisor; limit 100
	ProgressUpdates   int     `json:"progressUpdates"`
	Cores             int     `json:"cores"`
}

// benchScan runs a bulk scan of every machine at the rate limit, cuts it
// half way, resumes it, and counts 429s and duplicates.
func benchScan(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("bench scan", flag.ContinueOnError)
	machines := fs.Int("machines", 1000, "machines to scan")
	limits := fs.String("rate-limits", "x10", "rate limits of emulator and client alike: real, or xK to divide every window by K")
	if ok, code := parseFlags(fs, env, g, args, "bench scan [--machines N] [--rate-limits real|xK]"); !ok {
		return code
	}
	rl, err := emulator.ParseRateLimits(*limits)
	if err != nil || rl.Off {
		return usageError(env, "bench scan", "--rate-limits: want real or xK (the point is to run at the limit)")
	}
	emu, a, stop, err := startBench(ctx, env, g, "scan", *machines, *limits, "machines")
	if err != nil {
		return fail(env, "bench scan", err)
	}
	defer stop()
	store, _ := a.Store(ctx)
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "bench scan", err)
	}
	ms, _, err := store.FindMachines(ctx, mdebridge.MachineFilter{})
	if err != nil {
		return fail(env, "bench scan", err)
	}
	before := map[string]int{}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
		before[m.ID] = emu.server.MachineActionCount(m.ID, mdebridge.ActionScan)
	}
	// Machines with a scan already pending (offline ones, in the tenant's
	// history) get it joined, not a new one.
	client, err := a.MDE()
	if err != nil {
		return fail(env, "bench scan", err)
	}
	open := map[string]bool{}
	err = client.ListMachineActionsFiltered(ctx, "type eq 'RunAntiVirusScan' and (status eq 'Pending' or status eq 'InProgress')", func(as []mdebridge.MachineAction) error {
		for _, x := range as {
			open[strings.ToLower(x.MachineID)] = true
		}
		return nil
	})
	if err != nil {
		return fail(env, "bench scan", err)
	}
	emu.server.ResetStats()
	rep := scanReport{Machines: len(ms), RateLimits: *limits, Cores: runtime.NumCPU()}
	p := newBulkProgress(env, "scan")
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	_, err = svc.Respond(cut, mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: ids, Comment: "bench sweep", Actor: "bench"},
		func(b mdebridge.BulkProgress) {
			rep.ProgressUpdates++
			p.update(b)
			if b.Done >= b.Total/2 && rep.InterruptedAfter == 0 {
				rep.InterruptedAfter = b.Done
				cancel()
			}
		})
	p.finish()
	jobs, _ := store.ListBulkJobs(ctx, 1)
	if err != nil && len(jobs) == 1 && jobs[0].Status == mdebridge.BulkInterrupted {
		_, err = svc.Resume(ctx, jobs[0].ID, "bench", func(b mdebridge.BulkProgress) { rep.ProgressUpdates++; p.update(b) })
		p.finish()
		rep.Resumed = true
	}
	if err != nil {
		return fail(env, "bench scan", err)
	}
	rep.WallSeconds = time.Since(start).Seconds()
	st := emu.server.Stats()
	rep.ScanRequests, rep.Throttled = st.Calls[mde.ActionAPI(mdebridge.ActionScan)], st.Throttled
	div := max(1, rl.Divisor)
	rep.RequestsPerMinute = float64(rep.ScanRequests) / rep.WallSeconds * 60 / float64(div)
	rep.JoinedPending = len(open)
	for _, m := range ms {
		want := 1
		if open[strings.ToLower(m.ID)] {
			want = 0
		}
		switch n := emu.server.MachineActionCount(m.ID, mdebridge.ActionScan) - before[m.ID]; {
		case n > want:
			rep.Duplicates++
		case n < want:
			rep.Missing++
		}
	}
	writeJSON(env.Stdout, rep)
	if rep.Throttled > 0 || rep.Duplicates > 0 || rep.Missing > 0 {
		return ExitFailure
	}
	return ExitOK
}

type indicatorsReport struct {
	Indicators  int     `json:"indicators"`
	ImportCalls int     `json:"importCalls"`
	Imported    int     `json:"imported"`
	Throttled   int     `json:"throttled"`
	WallSeconds float64 `json:"wallSeconds"`
	Cores       int     `json:"cores"`
}

// benchIndicators imports 10,000 indicators from a CSV file under the real
// limits: 20 import calls, none throttled.
func benchIndicators(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("bench indicators", flag.ContinueOnError)
	n := fs.Int("indicators", 10000, "indicators in the file")
	if ok, code := parseFlags(fs, env, g, args, "bench indicators [--indicators N]"); !ok {
		return code
	}
	emu, a, stop, err := startBench(ctx, env, g, "indicators", 10, "real")
	if err != nil {
		return fail(env, "bench indicators", err)
	}
	defer stop()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "bench indicators", err)
	}
	var file bytes.Buffer
	file.WriteString("indicatorValue,indicatorType,action,title,severity\n")
	for i := range *n {
		fmt.Fprintf(&file, "%064x,FileSha256,Block,bench ioc %d,High\n", i+1, i)
	}
	emu.server.ResetStats()
	start := time.Now()
	r, err := svc.ImportIndicatorFile(ctx, bytes.NewReader(file.Bytes()), "csv", mdebridge.IndicatorImport{Comment: "bench", Actor: "bench"})
	if err != nil {
		return fail(env, "bench indicators", err)
	}
	st := emu.server.Stats()
	rep := indicatorsReport{Indicators: *n, ImportCalls: st.Calls["POST /api/indicators/import"], Imported: r.Imported,
		Throttled: st.Throttled, WallSeconds: time.Since(start).Seconds(), Cores: runtime.NumCPU()}
	writeJSON(env.Stdout, rep)
	if strings.TrimSpace(r.Aborted) != "" || rep.Throttled > 0 {
		return ExitFailure
	}
	return ExitOK
}
