package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mdebridge/mdebridge/azure"
	"github.com/mdebridge/mdebridge/config"
	"github.com/mdebridge/mdebridge/incident"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/response"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/syncer"
)

// App holds the wired services of one process. Parts are built on first
// use, so that a command reading the store never needs credentials and one
// checking credentials never opens the store.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	Cloud    azure.Cloud

	store  *sqlite.DB
	http   *http.Client
	tokens *azure.TokenSource
	client *mde.Client
	engine *syncer.Engine
	resp   *response.Service // Responder

	pipeline *incident.Pipeline // incidents.go
}

// loadConfig resolves and loads the configuration for a command.
func loadConfig(env *Env, g *globals) (config.Config, error) {
	path, explicit := config.Resolve(g.config, env.Getenv)
	cfg, err := config.Load(path, explicit, env.Getenv)
	if err != nil {
		if !explicit && cfg.Path == "" {
			return cfg, fmt.Errorf("%w\n(no configuration file: pass --config, set MDEBRIDGE_CONFIG, create ./mdebridge.yaml, or try 'mdebridge demo')", err)
		}
		return cfg, err
	}
	return cfg, nil
}

// newApp loads the configuration and builds the logger; defaultLevel is the
// log level when neither --log-level nor (for long-running commands) the
// configuration sets one.
func newApp(env *Env, g *globals, defaultLevel string) (*App, error) {
	cfg, err := loadConfig(env, g)
	if err != nil {
		return nil, err
	}
	if defaultLevel == "" {
		defaultLevel = cfg.Log.Level
	}
	log, err := newLogger(env, g, defaultLevel, cfg.Log.Format)
	if err != nil {
		return nil, err
	}
	cloud, err := azure.Lookup(cfg.Azure.Cloud)
	if err != nil {
		return nil, err
	}
	if cloud, err = cloud.WithRegion(cfg.Azure.Region); err != nil {
		return nil, err
	}
	e := cfg.Azure.Endpoints
	cloud = cloud.Override(azure.Endpoints{Login: e.Login, MDE: e.MDE, MDEResource: e.MDEResource, ARM: e.ARM,
		ARMResource: e.ARMResource, Graph: e.Graph, GraphResource: e.GraphScope, Portal: e.Portal})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{Config: cfg, Log: log, Registry: reg, Cloud: cloud}, nil
}

// Store opens the store on first use.
func (a *App) Store(ctx context.Context) (*sqlite.DB, error) {
	if a.store != nil {
		return a.store, nil
	}
	if dir := filepath.Dir(a.Config.Store.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
	}
	db, err := sqlite.Open(ctx, a.Config.Store.Path, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	a.store = db
	return db, nil
}

// HTTPClient is the client for every Microsoft endpoint: the system's CAs
// plus azure.ca_file.
func (a *App) HTTPClient() (*http.Client, error) {
	if a.http != nil {
		return a.http, nil
	}
	c, err := azure.NewHTTPClient(a.Config.Azure.CAFile)
	if err != nil {
		return nil, err
	}
	a.http = c
	return c, nil
}

// Tokens builds the credential on first use.
func (a *App) Tokens() (*azure.TokenSource, error) {
	if a.tokens != nil {
		return a.tokens, nil
	}
	httpClient, err := a.HTTPClient()
	if err != nil {
		return nil, err
	}
	az := a.Config.Azure
	cred, err := azure.NewCredential(azure.CredentialOptions{
		Cloud: a.Cloud, Kind: az.AuthKind(), TenantID: az.TenantID, ClientID: az.ClientID,
		ClientSecret: az.ClientSecret.Value(), CertificatePath: az.ClientCertificatePath,
		CertificatePassword: az.ClientCertificatePassword.Value(), HTTPClient: httpClient,
	})
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	a.tokens = azure.NewTokenSource(cred, a.Cloud.MDEScope(), az.AuthKind())
	return a.tokens, nil
}

// MDE builds the MDE client on first use.
func (a *App) MDE() (*mde.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	tokens, err := a.Tokens()
	if err != nil {
		return nil, err
	}
	httpClient, err := a.HTTPClient()
	if err != nil {
		return nil, err
	}
	version, _ := Version()
	c, err := mde.New(mde.Options{BaseURL: a.Cloud.MDEBaseURL, Tokens: tokens, HTTPClient: httpClient,
		Logger: a.Log.With("api", "mde"), UserAgent: "mdebridge/" + version,
		MaxAttempts: a.Config.Sync.MaxAttempts, MaxBackoff: time.Duration(a.Config.Sync.MaxBackoff)})
	if err != nil {
		return nil, err
	}
	c.SetExportSettings(mde.ExportSettings{Parallel: a.Config.Exposure.ParallelDownloads, PageSize: a.Config.Exposure.PageSize})
	a.client = c
	return c, nil
}

// Engine wires the sync steps on first use.
func (a *App) Engine(ctx context.Context) (*syncer.Engine, error) {
	if a.engine != nil {
		return a.engine, nil
	}
	store, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	client, err := a.MDE()
	if err != nil {
		return nil, err
	}
	e, err := syncer.New(syncer.Options{
		Store:         store,
		Logger:        a.Log,
		Registerer:    a.Registry,
		DescribeError: describe,
		Steps: append([]syncer.Step{
			syncer.MachinesStep{Source: client, Store: store},
			syncer.IndicatorsStep{Source: client, Store: store},
			syncer.MachineActionsStep{Source: client, Store: store},
			syncer.LogonUsersStep{Source: client, Store: store, PerMachineBudget: a.Config.Sync.LogonUserCalls},
		}, exposureSteps(a.Config.Exposure, client, store)...),
	})
	if err != nil {
		return nil, err
	}
	a.engine = e
	return e, nil
}

// Close releases what was opened.
func (a *App) Close() error {
	var errs []error
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	return errors.Join(errs...)
}
