package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/internal/atomicfile"
)

func cmdEmulate(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	o := emulatorOptions{}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8443", "listen address (TLS)")
	fs.StringVar(&o.stateDir, "state-dir", "mdebridge-emulator", "directory for ca.pem, mdebridge.yaml and the emulator's keys")
	fs.IntVar(&o.machines, "machines", 1000, "machines in the generated tenant")
	fs.Float64Var(&o.vulnsPerMachine, "vulns-per-machine", 50, "average vulnerability rows per machine in the generated tenant")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generated tenant (same seed, same tenant)")
	fs.StringVar(&o.rateLimits, "rate-limits", "real", "real (Microsoft's documented limits), off, or xK (every window divided by K)")
	fs.StringVar(&o.tenantFile, "tenant-file", "", "serve this tenant JSON file; when it does not exist, write the generated tenant to it")
	o.registerAlertFlags(fs, 0, emulator.Activity{})
	dump := fs.String("dump-tenant", "", "write the generated tenant to this JSON file and exit")
	readyFile := fs.String("ready-file", "", "write the listening address and timings to this JSON file once serving (for scripts)")
	if ok, code := parseFlags(fs, env, g, args, "emulate [--addr HOST:PORT] [--state-dir DIR] [--machines N] [--seed S] [--rate-limits real|off|xK] [--tenant-file F]"); !ok {
		return code
	}
	if o.machines < 0 {
		return usageError(env, "emulate", "--machines must be 0 or more")
	}
	rl, err := emulator.ParseRateLimits(o.rateLimits)
	if err != nil {
		return usageError(env, "emulate", "--rate-limits: %v", err)
	}
	o.limits = rl
	logger, err := newLogger(env, g, "info", "text")
	if err != nil {
		return usageError(env, "emulate", "%v", err)
	}
	o.log = logger
	if *dump != "" {
		start := time.Now()
		t := emulator.Generate(emulator.GenerateOptions{Seed: o.seed, Machines: o.machines, Alerts: o.alerts, Now: time.Now().UTC(), VulnsPerMachine: o.vulnsPerMachine})
		if err := t.WriteFile(*dump); err != nil {
			return fail(env, "emulate", err)
		}
		fmt.Fprintf(env.Stdout, "Wrote tenant %s (%d machines) to %s in %s.\n", t.ID(), t.MachineCount(), *dump, fmtDuration(time.Since(start)))
		return ExitOK
	}
	emu, err := startEmulator(ctx, o)
	if err != nil {
		return fail(env, "emulate", err)
	}
	defer emu.stop()
	fmt.Fprintf(env.Stdout, `Emulated Microsoft cloud for tenant %s (%d machines, generated in %s; rate limits %s)
  listening    %s   (Entra ID, MDE API, control API at /_emulator/)
  CA           %s
  client config %s   (an app holding every MDE permission)

Try:
  mdebridge --config %s doctor
  mdebridge --config %s sync
  mdebridge --config %s machines list
Stop with Ctrl-C.
`, emu.server.TenantID(), emu.tenant.MachineCount(), fmtDuration(emu.generated), o.rateLimits, emu.url, emu.caFile, emu.configFile,
		emu.configFile, emu.configFile, emu.configFile)
	if *readyFile != "" {
		ready, _ := json.Marshal(map[string]any{"url": emu.url, "config": emu.configFile, "ca": emu.caFile,
			"tenantId": emu.server.TenantID(), "machines": emu.tenant.MachineCount(), "generateSeconds": emu.generated.Seconds()})
		if err := atomicfile.Write(*readyFile, ready, 0o600); err != nil {
			return fail(env, "emulate", err)
		}
	}
	if env.Ready != nil {
		env.Ready("emulator", emu.addr)
	}
	<-ctx.Done()
	return ExitOK
}

// emulatorOptions configure an in-process emulator.
type emulatorOptions struct {
	addr       string
	stateDir   string
	machines   int
	seed       int64
	rateLimits string
	limits     emulator.RateLimits
	tenantFile string
	log        *slog.Logger

	// vulnsPerMachine is the average vulnerability rows per machine (0: 50).
	vulnsPerMachine float64

	alerts   int               // alerts of the last 30 days in a generated tenant
	activity emulator.Activity // background alert traffic
}

// registerAlertFlags adds the alert options of emulate and demo.
func (o *emulatorOptions) registerAlertFlags(fs *flag.FlagSet, alerts int, a emulator.Activity) {
	fs.IntVar(&o.alerts, "alerts", alerts, "alerts of the last 30 days in the generated tenant")
	fs.Float64Var(&o.activity.AlertsPerMinute, "alerts-per-minute", a.AlertsPerMinute, "new alerts a minute (background activity)")
	fs.Float64Var(&o.activity.UpdatesPerMinute, "updates-per-minute", a.UpdatesPerMinute, "alert changes a minute: triage, comments, evidence")
	fs.Float64Var(&o.activity.LateFraction, "late-fraction", a.LateFraction, "share of new alerts that show up 30-120 s after their lastUpdateTime")
}

// runningEmulator is an emulator serving TLS, with a client configuration
// written for it.
type runningEmulator struct {
	server     *emulator.Server
	tenant     *emulator.Tenant
	url        string
	addr       string
	caFile     string
	configFile string
	generated  time.Duration
	stop       func()
}

// startEmulator generates (or loads) the tenant, serves it over TLS with a
// CA kept in the state directory, creates an app holding every permission
// and writes mdebridge.yaml for it there.
func startEmulator(ctx context.Context, o emulatorOptions) (*runningEmulator, error) {
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	ca, err := emulator.LoadOrCreateCA(o.stateDir)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var tenant *emulator.Tenant
	if o.tenantFile != "" {
		if _, statErr := os.Stat(o.tenantFile); statErr == nil {
			if tenant, err = emulator.LoadTenantFile(o.tenantFile); err != nil {
				return nil, err
			}
		}
	}
	if tenant == nil {
		tenant = emulator.Generate(emulator.GenerateOptions{Seed: o.seed, Machines: o.machines, Alerts: o.alerts, Now: time.Now().UTC(), VulnsPerMachine: o.vulnsPerMachine})
		if o.tenantFile != "" {
			if err := tenant.WriteFile(o.tenantFile); err != nil {
				return nil, err
			}
		}
	}
	generated := time.Since(start)
	server, err := emulator.New(emulator.Options{Tenant: tenant, Logger: o.log.With("component", "emulator"), RateLimits: o.limits, StateDir: o.stateDir})
	if err != nil {
		return nil, err
	}
	tlsCfg, err := ca.ServerTLSConfig()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", o.addr, tlsCfg)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	creds, err := server.CreateApp(emulator.AppSpec{Roles: emulator.AllRoles(), DisplayName: "mdebridge"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	addr := loopbackAddr(ln.Addr())
	e := &runningEmulator{server: server, tenant: tenant, url: "https://" + addr, addr: addr, generated: generated,
		caFile: filepath.Join(o.stateDir, "ca.pem"), configFile: filepath.Join(o.stateDir, "mdebridge.yaml")}
	if err := WriteClientConfig(e.configFile, e.url, "ca.pem", creds); err != nil {
		ln.Close()
		return nil, err
	}
	if err := server.SetActivity(o.activity); err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: server, ReadHeaderTimeout: 30 * time.Second,
		// A client that drops a TLS handshake is not worth a log line each.
		ErrorLog: log.New(io.Discard, "", 0)}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Error("emulator stopped", "err", err)
		}
	})
	activityCtx, stopActivity := context.WithCancel(ctx)
	wg.Go(func() { server.RunActivity(activityCtx) })
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			stopActivity()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			wg.Wait()
		})
	}
	return e, nil
}

// loopbackAddr names a listener by an address a client can dial: an
// unspecified IP (0.0.0.0, ::) becomes 127.0.0.1.
func loopbackAddr(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// WriteClientConfig writes a configuration that points mdebridge at the
// emulator at url, trusting caFile (relative to the file's directory). It
// holds the app's secret, so it is private to the user (mode 0600).
func WriteClientConfig(path, url, caFile string, c emulator.AppCredentials) error {
	q := strconv.Quote
	body := fmt.Sprintf(`# Written by mdebridge for the emulated tenant %s.
# The app below holds every MDE application permission. Keep this file private.
azure:
  cloud: custom
  tenant_id: %s
  client_id: %s
  client_secret: %s
  ca_file: %s
  endpoints:
    login: %s
    mde: %s
    arm: %s
    graph: %s
store:
  path: mdebridge.db
`, c.TenantID, q(c.TenantID), q(c.ClientID), q(c.ClientSecret), q(caFile), q(url+"/"), q(url), q(url), q(url))
	return atomicfile.Write(path, []byte(body), 0o600)
}
