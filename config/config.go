// Package config loads mdebridge's configuration: a YAML file decoded strictly
// (an unknown key is an error naming the key and the file), defaults, an
// environment overlay, and validation.
//
// Secrets are held in the Secret type, which never prints its value: not in
// logs, not in errors, not when the configuration is marshalled back out.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultPath is the file read when neither --config nor $MDEBRIDGE_CONFIG names one.
const DefaultPath = "mdebridge.yaml"

// Config is the whole configuration.
type Config struct {
	Azure Azure `yaml:"azure"`
	Store Store `yaml:"store"`
	Sync  Sync  `yaml:"sync"`
	Serve Serve `yaml:"serve"`
	Log   Log   `yaml:"log"`

	Incidents  Incidents  `yaml:"incidents"` // incidents.go
	Response   Response   `yaml:"response"`
	Indicators Indicators `yaml:"indicators"`
	Exposure   Exposure   `yaml:"exposure"`

	// Path is the file the configuration came from ("" when none was read).
	Path string `yaml:"-"`
}

// Azure says which cloud to talk to and how to authenticate.
type Azure struct {
	// Cloud is public (default), gcc, gcc-high, dod or custom.
	Cloud string `yaml:"cloud"`
	// Region pins a regional MDE API host in the public cloud: us, eu, uk, au, swa, ina.
	Region string `yaml:"region,omitempty"`

	TenantID string `yaml:"tenant_id"`
	ClientID string `yaml:"client_id"`

	// Auth is client_secret, client_certificate, managed_identity,
	// workload_identity or azure_cli. Empty means client_certificate when a
	// certificate is configured, else client_secret.
	Auth string `yaml:"auth,omitempty"`

	ClientSecret              Secret `yaml:"client_secret,omitempty"`
	ClientSecretFile          string `yaml:"client_secret_file,omitempty"`
	ClientCertificatePath     string `yaml:"client_certificate_path,omitempty"`
	ClientCertificatePassword Secret `yaml:"client_certificate_password,omitempty"`

	// CAFile is an extra CA bundle (PEM) to trust besides the system's, as
	// for the emulator or a TLS-inspecting proxy. Verification is never off.
	CAFile string `yaml:"ca_file,omitempty"`

	// Endpoints override the cloud's; custom needs at least login and mde.
	Endpoints Endpoints `yaml:"endpoints,omitempty"`
}

// Endpoints are base URLs and token resources of one cloud.
type Endpoints struct {
	Login       string `yaml:"login,omitempty"`
	MDE         string `yaml:"mde,omitempty"`
	MDEResource string `yaml:"mde_resource,omitempty"`
	ARM         string `yaml:"arm,omitempty"`
	ARMResource string `yaml:"arm_resource,omitempty"`
	Graph       string `yaml:"graph,omitempty"`
	GraphScope  string `yaml:"graph_resource,omitempty"`
	Portal      string `yaml:"portal,omitempty"`
}

// Store says where synced data lives.
type Store struct {
	// Driver is sqlite (the only one so far).
	Driver string `yaml:"driver"`
	// Path is the SQLite file, relative to the configuration file.
	Path string `yaml:"path"`
}

// Sync tunes the sync engine.
type Sync struct {
	// Interval between scheduled syncs in serve (default 1h).
	Interval Duration `yaml:"interval"`
	// MaxAttempts bounds the attempts of one upstream call, retries
	// included (default 6).
	MaxAttempts int `yaml:"max_attempts"`
	// MaxBackoff caps the wait between attempts when the service gives no
	// Retry-After (default 1m).
	MaxBackoff Duration `yaml:"max_backoff"`
	// LogonUserCalls bounds the per-machine logonusers calls of one sync
	// when advanced hunting is not permitted (default 1500, an hour of the
	// API's quota; the next sync resumes); 0 turns that fallback off.
	LogonUserCalls int `yaml:"logon_user_calls"`
}

// Exposure tunes the sync of vulnerabilities and software.
type Exposure struct {
	// FullExportEvery is how often, at most, the vulnerabilities are
	// exported in full (default 24h); the delta API brings the changes in
	// between.
	FullExportEvery Duration `yaml:"full_export_every"`
	// Via is how exports are fetched: files (default: gzip files from blob
	// storage, the fewest API calls) or json (pages of the JSON API).
	Via string `yaml:"via"`
	// ParallelDownloads is how many export files download at once (default 2).
	ParallelDownloads int `yaml:"parallel_downloads"`
	// PageSize is the JSON exports' page (default and maximum 200000).
	PageSize int `yaml:"page_size"`
	// DeltaLimit is the most changes applied from the delta API; more are
	// cheaper as a full export (default 250000).
	DeltaLimit int `yaml:"delta_limit"`
}

// Serve configures the long-running service.
type Serve struct {
	// Addr is the REST API's listen address (default 127.0.0.1:8080).
	Addr string `yaml:"addr"`
}

// Response tunes response actions (isolate, scan, live response …).
type Response struct {
	// Actor is who acts, for the audit log, when a command does not say
	// (default: the user running it, $USER@host).
	Actor string `yaml:"actor,omitempty"`
	// WaitTimeout bounds --wait (default 10m); the action goes on in MDE.
	WaitTimeout Duration `yaml:"wait_timeout"`
	// Concurrency is how many calls a bulk job keeps in flight (default 4);
	// the documented rate limits pace them either way.
	Concurrency int `yaml:"concurrency"`
	// DownloadDir receives investigation packages and live response results
	// (default "downloads", relative to the configuration file).
	DownloadDir string `yaml:"download_dir"`
	// ResponderToken is the bearer token the REST API's write endpoints
	// (actions, indicators) require; empty leaves them disabled.
	ResponderToken Secret `yaml:"responder_token,omitempty"`
}

// Indicators fill what indicator files leave out.
type Indicators struct {
	DefaultAction     string   `yaml:"default_action"`     // Audit (default): alerts, blocks nothing
	DefaultSeverity   string   `yaml:"default_severity"`   // "" leaves it to MDE (Informational)
	DefaultExpiration Duration `yaml:"default_expiration"` // 720h (default); 0s for none
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Default returns the configuration used where the file and the environment are silent.
func Default() Config {
	return Config{
		Azure: Azure{Cloud: "public"},
		Store: Store{Driver: "sqlite", Path: "mdebridge.db"},
		Sync:  Sync{Interval: Duration(time.Hour), MaxAttempts: 6, MaxBackoff: Duration(time.Minute), LogonUserCalls: 1500},
		Serve: Serve{Addr: "127.0.0.1:8080"},
		Log:   Log{Level: "info", Format: "text"},

		Incidents:  DefaultIncidents(),
		Response:   Response{WaitTimeout: Duration(10 * time.Minute), Concurrency: 4, DownloadDir: "downloads"},
		Indicators: Indicators{DefaultAction: "Audit", DefaultExpiration: Duration(30 * 24 * time.Hour)},
		Exposure:   Exposure{FullExportEvery: Duration(24 * time.Hour), Via: "files", ParallelDownloads: 2, PageSize: 200_000, DeltaLimit: 250_000},
	}
}

// Resolve picks the configuration file: the flag, else $MDEBRIDGE_CONFIG,
// else DefaultPath. explicit reports whether the user named it, in which case
// it must exist.
func Resolve(flagPath string, getenv func(string) string) (path string, explicit bool) {
	if flagPath != "" {
		return flagPath, true
	}
	if p := getenv("MDEBRIDGE_CONFIG"); p != "" {
		return p, true
	}
	return DefaultPath, false
}

// Load reads the file at path (when it exists, or always when explicit),
// applies the environment overlay from getenv and validates the result.
func Load(path string, explicit bool, getenv func(string) string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decode(data, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
		cfg.Path = path
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// No file: defaults and environment only.
	default:
		return cfg, fmt.Errorf("read configuration: %w", err)
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return cfg, err
	}
	cfg.resolvePaths()
	if err := cfg.loadSecretFile(); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)

// sectionOf maps the Go type named in a yaml error to the key users write.
var sectionOf = map[string]string{
	"Config": "", "Azure": "azure.", "Endpoints": "azure.endpoints.", "Store": "store.",
	"Sync": "sync.", "Serve": "serve.", "Log": "log.",
	"Incidents": "incidents.", "IncidentFilters": "incidents.filters.", "Sink": "incidents.sinks[].",
	"Response": "response.", "Indicators": "indicators.", "Exposure": "exposure.",
}

func decode(data []byte, cfg *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var msgs []string
			for _, e := range te.Errors {
				if m := unknownField.FindStringSubmatch(e); m != nil {
					msgs = append(msgs, fmt.Sprintf("line %s: unknown key %q", m[1], sectionOf[m[3]]+m[2]))
					continue
				}
				msgs = append(msgs, e)
			}
			return errors.New(strings.Join(msgs, "; "))
		}
		return fmt.Errorf("invalid YAML: %w", err)
	}
	return nil
}

// where names the place a setting came from, for error messages.
func (c *Config) where() string {
	if c.Path == "" {
		return "configuration (environment)"
	}
	return c.Path
}

func (c *Config) resolvePaths() {
	if c.Path == "" {
		c.Incidents.resolvePaths("")
		return
	}
	dir := filepath.Dir(c.Path)
	c.Incidents.resolvePaths(dir)
	for _, p := range []*string{&c.Store.Path, &c.Azure.CAFile, &c.Azure.ClientCertificatePath, &c.Azure.ClientSecretFile, &c.Response.DownloadDir} {
		if *p != "" && !filepath.IsAbs(*p) && *p != ":memory:" {
			*p = filepath.Join(dir, *p)
		}
	}
}

func (c *Config) loadSecretFile() error {
	if c.Azure.ClientSecretFile == "" || c.Azure.ClientSecret != "" {
		return nil
	}
	b, err := os.ReadFile(c.Azure.ClientSecretFile)
	if err != nil {
		return fmt.Errorf("%s: azure.client_secret_file: %w", c.where(), err)
	}
	c.Azure.ClientSecret = Secret(strings.TrimSpace(string(b)))
	return nil
}

// Clouds lists the accepted values of azure.cloud.
var Clouds = []string{"public", "gcc", "gcc-high", "dod", "custom"}

// Regions lists the accepted values of azure.region.
var Regions = []string{"us", "eu", "uk", "au", "swa", "ina"}

// AuthKinds lists the accepted values of azure.auth.
var AuthKinds = []string{"client_secret", "client_certificate", "managed_identity", "workload_identity", "azure_cli"}

// AuthKind returns the effective authentication method.
func (a Azure) AuthKind() string {
	switch {
	case a.Auth != "":
		return a.Auth
	case a.ClientCertificatePath != "":
		return "client_certificate"
	default:
		return "client_secret"
	}
}

// Validate checks the configuration and names the key and file of the first problems.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	a := c.Azure
	if !contains(Clouds, a.Cloud) {
		bad("azure.cloud", "%q is not one of %s", a.Cloud, strings.Join(Clouds, ", "))
	}
	if a.Region != "" && !contains(Regions, a.Region) {
		bad("azure.region", "%q is not one of %s", a.Region, strings.Join(Regions, ", "))
	}
	if a.Region != "" && a.Cloud != "public" {
		bad("azure.region", "regional hosts exist only in the public cloud")
	}
	if a.Cloud == "custom" {
		if a.Endpoints.Login == "" {
			bad("azure.endpoints.login", "required when azure.cloud is custom")
		}
		if a.Endpoints.MDE == "" {
			bad("azure.endpoints.mde", "required when azure.cloud is custom")
		}
	}
	for key, u := range map[string]string{"azure.endpoints.login": a.Endpoints.Login, "azure.endpoints.mde": a.Endpoints.MDE,
		"azure.endpoints.arm": a.Endpoints.ARM, "azure.endpoints.graph": a.Endpoints.Graph} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			bad(key, "%q must be an https:// URL (tokens are never sent in clear)", u)
		}
	}
	kind := a.AuthKind()
	if !contains(AuthKinds, kind) {
		bad("azure.auth", "%q is not one of %s", kind, strings.Join(AuthKinds, ", "))
	}
	needTenant := kind == "client_secret" || kind == "client_certificate" || kind == "workload_identity"
	if needTenant && a.TenantID == "" {
		bad("azure.tenant_id", "required (or set AZURE_TENANT_ID)")
	}
	if (kind == "client_secret" || kind == "client_certificate") && a.ClientID == "" {
		bad("azure.client_id", "required (or set AZURE_CLIENT_ID)")
	}
	if kind == "client_secret" && a.ClientSecret == "" {
		bad("azure.client_secret", "required for client_secret authentication (or set AZURE_CLIENT_SECRET or azure.client_secret_file)")
	}
	if kind == "client_certificate" && a.ClientCertificatePath == "" {
		bad("azure.client_certificate_path", "required for client_certificate authentication (or set AZURE_CLIENT_CERTIFICATE_PATH)")
	}
	if c.Store.Driver != "sqlite" {
		bad("store.driver", "%q is not supported (sqlite)", c.Store.Driver)
	}
	if c.Store.Path == "" {
		bad("store.path", "required")
	}
	if time.Duration(c.Sync.Interval) < time.Minute {
		bad("sync.interval", "%s is too short (at least 1m)", time.Duration(c.Sync.Interval))
	}
	if c.Sync.MaxAttempts < 1 || c.Sync.MaxAttempts > 20 {
		bad("sync.max_attempts", "%d is not from 1 to 20", c.Sync.MaxAttempts)
	}
	if time.Duration(c.Sync.MaxBackoff) < time.Millisecond {
		bad("sync.max_backoff", "%s is too short", time.Duration(c.Sync.MaxBackoff))
	}
	if c.Sync.LogonUserCalls < 0 || c.Sync.LogonUserCalls > 100_000 {
		bad("sync.logon_user_calls", "%d is not from 0 (no per-machine fallback) to 100000", c.Sync.LogonUserCalls)
	}
	if _, _, err := net.SplitHostPort(c.Serve.Addr); err != nil {
		bad("serve.addr", "%q is not host:port", c.Serve.Addr)
	}
	if d := time.Duration(c.Response.WaitTimeout); d < time.Second || d > 24*time.Hour {
		bad("response.wait_timeout", "%s is not from 1s to 24h", d)
	}
	if c.Response.Concurrency < 1 || c.Response.Concurrency > 32 {
		bad("response.concurrency", "%d is not from 1 to 32", c.Response.Concurrency)
	}
	if t := c.Response.ResponderToken.Value(); t != "" && len(t) < 16 {
		bad("response.responder_token", "too short: use at least 16 random characters")
	}
	if !contains([]string{"Warn", "Block", "Audit", "Alert", "AlertAndBlock", "BlockAndRemediate", "Allowed"}, c.Indicators.DefaultAction) {
		bad("indicators.default_action", "%q is not one of Warn, Block, Audit, Alert, AlertAndBlock, BlockAndRemediate, Allowed", c.Indicators.DefaultAction)
	}
	if v := c.Indicators.DefaultSeverity; v != "" && !contains([]string{"Informational", "Low", "Medium", "High"}, v) {
		bad("indicators.default_severity", "%q is not one of Informational, Low, Medium, High", v)
	}
	if c.Indicators.DefaultExpiration < 0 {
		bad("indicators.default_expiration", "must not be negative")
	}
	if !contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if e := c.Exposure; time.Duration(e.FullExportEvery) < time.Hour {
		bad("exposure.full_export_every", "%s is too short (at least 1h: the service regenerates its exports every 6 hours)", time.Duration(e.FullExportEvery))
	}
	if !contains([]string{"files", "json"}, c.Exposure.Via) {
		bad("exposure.via", "%q is not one of files, json", c.Exposure.Via)
	}
	if n := c.Exposure.ParallelDownloads; n < 1 || n > 16 {
		bad("exposure.parallel_downloads", "%d is not from 1 to 16", n)
	}
	if n := c.Exposure.PageSize; n < 1 || n > 200_000 {
		bad("exposure.page_size", "%d is not from 1 to 200000", n)
	}
	if c.Exposure.DeltaLimit < 1 {
		bad("exposure.delta_limit", "%d must be at least 1", c.Exposure.DeltaLimit)
	}
	c.Incidents.validate(bad)
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", c.where(), strings.Join(errs, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Marshal renders the configuration as YAML, secrets redacted.
func (c Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }
