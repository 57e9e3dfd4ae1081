package app

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/config"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/sink"
	"github.com/mdebridge/mdebridge/syncer"
)

func cmdDemo(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := emulatorOptions{addr: "127.0.0.1:0"}
	fs.StringVar(&o.stateDir, "dir", "mdebridge-demo", "directory for the demo's configuration, CA and SQLite file")
	fs.IntVar(&o.machines, "machines", 5000, "machines in the emulated tenant")
	fs.Float64Var(&o.vulnsPerMachine, "vulns-per-machine", 50, "average vulnerability rows per machine in the emulated tenant")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the emulated tenant")
	fs.StringVar(&o.rateLimits, "rate-limits", "real", "emulator rate limits: real, off or xK")
	o.registerAlertFlags(fs, 200, emulator.Activity{AlertsPerMinute: 3, UpdatesPerMinute: 2, LateFraction: 0.05})
	addr := fs.String("addr", "127.0.0.1:8080", "listen address of the REST API")
	once := fs.Bool("once", false, "sync once and exit instead of serving")
	if ok, code := parseFlags(fs, env, g, args, "demo [--dir DIR] [--machines N] [--vulns-per-machine N] [--addr HOST:PORT] [--once]"); !ok {
		return code
	}
	rl, err := emulator.ParseRateLimits(o.rateLimits)
	if err != nil {
		return usageError(env, "demo", "--rate-limits: %v", err)
	}
	o.limits = rl
	if o.log, err = newLogger(env, g, "warn", "text"); err != nil {
		return usageError(env, "demo", "%v", err)
	}
	fmt.Fprintf(env.Stdout, "Starting an emulated Microsoft Defender for Endpoint tenant with %s machines and %s alerts…\n", thousands(o.machines), thousands(o.alerts))
	emu, err := startEmulator(ctx, o)
	if err != nil {
		return fail(env, "demo", err)
	}
	defer emu.stop()
	fmt.Fprintf(env.Stdout, "Emulator: tenant %s at %s (generated in %s)\n\n", emu.server.TenantID(), emu.url, fmtDuration(emu.generated))

	g.config = emu.configFile
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "demo", err)
	}
	defer a.Close()
	if len(a.Config.Incidents.Sinks) == 0 {
		// Incident events go to a file the user can tail, and every
		// generated alert (the last 30 days) becomes one.
		a.Config.Incidents.Sinks = []config.Sink{{Name: "file", Type: "file", Path: filepath.Join(o.stateDir, "incidents.jsonl")}}
		a.Config.Incidents.FirstFetch = config.Duration(31 * 24 * time.Hour)
	}
	run, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "demo"})
	if err != nil {
		return fail(env, "demo", err)
	}
	printRun(env.Stdout, run)
	abs, _ := filepath.Abs(emu.configFile)
	if *once {
		fmt.Fprintf(env.Stdout, "\nSynced into %s. Explore it with:\n  mdebridge --config %s machines list\n", a.Config.Store.Path, abs)
		return runExitCode(run)
	}
	err = serve(ctx, env, a, serveOptions{addr: *addr, schedule: true, skipFirstSync: true, banner: func(url string) {
		fmt.Fprintf(env.Stdout, `
mdebridge is serving the synced data:
  %s/api/v1/machines        machines (REST, JSON)
  %s/api/v1/incidents       alerts become incidents, kept current (new alerts arrive every few seconds)
  %s/api/v1/status          what the store holds
  %s/api/v1/openapi.json    the API description
  %s/metrics                Prometheus metrics
%s

In another terminal:
  mdebridge --config %s machines list
  mdebridge --config %s vulns list --severity Critical
  mdebridge --config %s incidents list
  mdebridge --config %s incidents update <id> --status Resolved --classification TruePositive --determination Malware
  mdebridge --config %s hunt --list
  mdebridge --config %s isolate <computer name> --comment "demo" --wait
  mdebridge --config %s doctor

Press Ctrl-C to stop.
`, url, url, url, url, url, sinkSummary(a.Config.Incidents.Sinks), abs, abs, abs, abs, abs, abs, abs)
	}})
	if err != nil {
		return fail(env, "demo", err)
	}
	return runExitCode(run)
}

// sinkSummary says where incident events go.
func sinkSummary(sinks []config.Sink) string {
	var where []string
	for _, s := range sinks {
		switch {
		case s.Path != "":
			where = append(where, s.Path)
		case s.URL != "":
			where = append(where, "webhook "+sink.RedactURL(s.URL))
		case s.Address != "":
			where = append(where, s.Type+" "+s.Address)
		default:
			where = append(where, s.Type)
		}
	}
	return "Incident events (ECS fields, docs/incident-events.md) go to: " + strings.Join(where, ", ")
}
