package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/incident"
	"github.com/mdebridge/mdebridge/syncer"
	"github.com/mdebridge/mdebridge/web"
)

func cmdServe(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address of the REST API (default: serve.addr of the configuration, 127.0.0.1:8080)")
	noSchedule := fs.Bool("no-schedule", false, "do not sync on a schedule (the API can still start one)")
	if ok, code := parseFlags(fs, env, g, args, "serve [--addr HOST:PORT] [--no-schedule]"); !ok {
		return code
	}
	a, err := newApp(env, g, "")
	if err != nil {
		return fail(env, "serve", err)
	}
	defer a.Close()
	if *addr == "" {
		*addr = a.Config.Serve.Addr
	}
	err = serve(ctx, env, a, serveOptions{addr: *addr, schedule: !*noSchedule, banner: func(url string) {
		fmt.Fprintf(env.Stderr, "mdebridge serving %s (REST API %s/api/v1/machines and /api/v1/incidents, metrics %s/metrics)\n", url, url, url)
	}})
	if err != nil {
		return fail(env, "serve", err)
	}
	return ExitOK
}

type serveOptions struct {
	addr     string
	schedule bool
	// skipFirstSync waits one interval before the first scheduled sync,
	// when the caller has just synced.
	skipFirstSync bool
	banner        func(url string)
}

// serve runs the REST API, and the scheduler when asked, until ctx ends.
func serve(ctx context.Context, env *Env, a *App, o serveOptions) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	store, err := a.Store(ctx)
	if err != nil {
		return err
	}
	engine, err := a.Engine(ctx)
	if err != nil {
		return err
	}
	client, err := a.MDE()
	if err != nil {
		return err
	}
	var pipeline *incident.Pipeline
	var changer mdebridge.IncidentService
	if a.Config.Incidents.Enabled {
		if pipeline, err = a.Pipeline(ctx, env.Stdout); err != nil {
			return err
		}
		changer = pipeline.Service()
	}
	responder, err := a.Responder(ctx)
	if err != nil {
		return err
	}
	version, _ := Version()
	h, err := web.New(web.Options{
		Machines: store, Runs: store, Status: store, Hunting: client, LogonUsers: store, Exposure: store,
		Gatherer: a.Registry, Logger: a.Log.With("component", "web"),
		Alerts: store, Incidents: store, IncidentService: changer,
		Version: version, BaseContext: ctx,
		Sync: func(ctx context.Context) (*mdebridge.SyncRun, error) {
			return engine.Run(ctx, syncer.RunOptions{Trigger: "api"})
		},
		Response: web.ResponseOptions{Responder: responder, Actions: store, Jobs: store, Audit: store, Indicators: store,
			Token: a.Config.Response.ResponderToken.Value()},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another mdebridge running? choose another address with --addr)", o.addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	url := "http://" + ln.Addr().String()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	})
	if o.schedule {
		sched := &syncer.Scheduler{Engine: engine, Interval: time.Duration(a.Config.Sync.Interval), Logger: a.Log}
		if o.skipFirstSync {
			sched.FirstAfter = sched.Interval
		}
		wg.Go(func() { sched.Run(ctx) })
		a.Log.Info("scheduled syncs", "every", a.Config.Sync.Interval)
	}
	if pipeline != nil {
		wg.Go(func() {
			if err := pipeline.Run(ctx); err != nil {
				a.Log.Error("incident pipeline stopped", "err", err)
			}
		})
	}
	if o.banner != nil {
		o.banner(url)
	}
	if env.Ready != nil {
		env.Ready("api", ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	h.Wait()
	wg.Wait()
	return err
}
