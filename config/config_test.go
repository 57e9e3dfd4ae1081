package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/config"
)

func noEnv(string) string { return "" }

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		file    string
		env     map[string]string
		wantErr []string // substrings; nil means success
		check   func(t *testing.T, c config.Config)
	}{
		{file: "good.yaml", check: func(t *testing.T, c config.Config) {
			if c.Azure.Region != "eu" || c.Serve.Addr != "127.0.0.1:9090" || time.Duration(c.Sync.Interval) != 30*time.Minute {
				t.Errorf("settings not read: %+v", c)
			}
			if want := filepath.Join("testdata", "data", "mdebridge.db"); c.Store.Path != want {
				t.Errorf("store.path = %q, want %q (relative to the file)", c.Store.Path, want)
			}
			if c.Azure.ClientSecret.Value() != "s3cr3t-value-do-not-print" {
				t.Error("secret not read")
			}
		}},
		{file: "emulator.yaml", check: func(t *testing.T, c config.Config) {
			if c.Azure.Endpoints.MDE != "https://127.0.0.1:18443" || c.Azure.CAFile != filepath.Join("testdata", "ca.pem") {
				t.Errorf("endpoints or ca_file wrong: %+v", c.Azure)
			}
		}},
		{file: "empty.yaml", wantErr: []string{"azure.tenant_id: required", "azure.client_id: required", "azure.client_secret: required"}},
		{file: "unknown-key.yaml", wantErr: []string{"unknown-key.yaml", `line 5: unknown key "azure.tennant"`}},
		{file: "missing-tenant.yaml", wantErr: []string{"missing-tenant.yaml", "azure.tenant_id: required"}},
		{file: "missing-tenant.yaml", env: map[string]string{"AZURE_TENANT_ID": "from-env"}, check: func(t *testing.T, c config.Config) {
			if c.Azure.TenantID != "from-env" {
				t.Errorf("AZURE_TENANT_ID not applied: %q", c.Azure.TenantID)
			}
		}},
		{file: "good.yaml", env: map[string]string{"AZURE_TENANT_ID": "ignored", "MDEBRIDGE_AZURE_TENANT_ID": "wins", "MDEBRIDGE_SYNC_INTERVAL": "2h", "MDEBRIDGE_AZURE_ENDPOINTS_PORTAL": "https://portal"},
			check: func(t *testing.T, c config.Config) {
				if c.Azure.TenantID != "wins" || time.Duration(c.Sync.Interval) != 2*time.Hour || c.Azure.Endpoints.Portal != "https://portal" {
					t.Errorf("MDEBRIDGE_ overlay not applied: %+v", c)
				}
			}},
		{file: "good.yaml", env: map[string]string{"MDEBRIDGE_SYNC_INTERVAL": "soon"}, wantErr: []string{"MDEBRIDGE_SYNC_INTERVAL", "not a duration"}},
		{file: "custom-no-endpoints.yaml", wantErr: []string{"azure.endpoints.login: required", "azure.endpoints.mde: required"}},
		{file: "bad-values.yaml", wantErr: []string{`azure.cloud: "moon"`, `azure.region: "mars"`, "sync.interval: 10s is too short", `serve.addr: "nowhere"`}},
		{file: "bad-duration.yaml", wantErr: []string{"bad-duration.yaml", `"hourly" is not a duration`}},
		{file: "http-endpoint.yaml", wantErr: []string{"azure.endpoints.login", "must be an https:// URL"}},
		{file: "managed-identity.yaml", check: func(t *testing.T, c config.Config) {
			if c.Azure.AuthKind() != "managed_identity" {
				t.Errorf("auth = %q", c.Azure.AuthKind())
			}
		}},
		{file: "secret-file.yaml", check: func(t *testing.T, c config.Config) {
			if c.Azure.ClientSecret.Value() != "from-a-file" {
				t.Errorf("secret file not read: %q", c.Azure.ClientSecret.Value())
			}
		}},
		{file: "does-not-exist.yaml", wantErr: []string{"does-not-exist.yaml", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			getenv := noEnv
			if tt.env != nil {
				getenv = env(tt.env)
			}
			c, err := config.Load(filepath.Join("testdata", tt.file), true, getenv)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Load succeeded, want an error with %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadWithoutFileUsesEnvironment(t *testing.T) {
	c, err := config.Load(filepath.Join(t.TempDir(), "absent.yaml"), false, env(map[string]string{
		"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != "" || c.Store.Path != "mdebridge.db" {
		t.Errorf("got path %q store %q", c.Path, c.Store.Path)
	}
}

func TestResolve(t *testing.T) {
	if p, ex := config.Resolve("a.yaml", env(map[string]string{"MDEBRIDGE_CONFIG": "b.yaml"})); p != "a.yaml" || !ex {
		t.Errorf("flag: %q %v", p, ex)
	}
	if p, ex := config.Resolve("", env(map[string]string{"MDEBRIDGE_CONFIG": "b.yaml"})); p != "b.yaml" || !ex {
		t.Errorf("env: %q %v", p, ex)
	}
	if p, ex := config.Resolve("", noEnv); p != config.DefaultPath || ex {
		t.Errorf("default: %q %v", p, ex)
	}
}

func TestSecretsNeverShow(t *testing.T) {
	const value = "s3cr3t-value-do-not-print"
	c, err := config.Load(filepath.Join("testdata", "good.yaml"), true, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c.Azure.ClientCertificatePassword = "pfx-password-do-not-print"
	y, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(c)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "secret", c.Azure.ClientSecret, "cfg", c)
	for _, out := range []string{
		string(y), string(j), logged.String(),
		fmt.Sprintf("%v %+v %#v %s %q %x", c, c, c, c.Azure.ClientSecret, c.Azure.ClientSecret, c.Azure.ClientSecret),
	} {
		if strings.Contains(out, value) || strings.Contains(out, "pfx-password") {
			t.Errorf("secret leaked in %q", out)
		}
	}
	if !strings.Contains(string(y), "<redacted>") {
		t.Errorf("marshalled config does not show the redaction:\n%s", y)
	}
}

func TestEnvNamesCoverEverySetting(t *testing.T) {
	names := strings.Join(config.EnvNames(), " ")
	for _, want := range []string{"MDEBRIDGE_AZURE_TENANT_ID", "MDEBRIDGE_AZURE_CLIENT_SECRET", "MDEBRIDGE_AZURE_ENDPOINTS_MDE", "MDEBRIDGE_STORE_PATH", "MDEBRIDGE_SYNC_INTERVAL", "MDEBRIDGE_SERVE_ADDR", "MDEBRIDGE_LOG_LEVEL"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{"azure:\n  tenant_id: x\n", "sync:\n  interval: 1h\n", "[", "azure: 3", "store: {path: [1]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := writeFile(p, data); err != nil {
			t.Skip()
		}
		_, _ = config.Load(p, true, noEnv) // must not panic
	})
}

func TestIncidentsConfig(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "incidents.yaml"), true, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	in := c.Incidents
	if !in.Enabled || !in.Mirror || time.Duration(in.PollInterval) != 10*time.Second || time.Duration(in.Overlap) != 10*time.Minute ||
		in.GroupBy != "mde_incident" || len(in.Filters.Severities) != 2 || len(in.Sinks) != 4 {
		t.Fatalf("incidents: %+v", in)
	}
	wh, sl, file, out := in.Sinks[0], in.Sinks[1], in.Sinks[2], in.Sinks[3]
	if wh.Name != "webhook" || wh.HMACKey.Value() != "hmac-do-not-print" || wh.DeadLetter != filepath.Join("testdata", "webhook-dead-letter.jsonl") ||
		wh.Headers["Authorization"].Value() != "Bearer token-do-not-print" || wh.MaxAttempts != 8 {
		t.Errorf("webhook %+v", wh)
	}
	if sl.Name != "syslog" || sl.CAFile != filepath.Join("testdata", "siem-ca.pem") || sl.Format != "cef" {
		t.Errorf("syslog %+v", sl)
	}
	if file.Name != "archive" || file.Path != filepath.Join("testdata", "events", "incidents.jsonl") || out.Name != "stdout" {
		t.Errorf("file %+v, stdout %+v", file, out)
	}
	y, _ := c.Marshal()
	for _, secret := range []string{"hmac-do-not-print", "token-do-not-print"} {
		if strings.Contains(string(y), secret) || strings.Contains(fmt.Sprintf("%+v", c), secret) {
			t.Errorf("%s shows", secret)
		}
	}

	_, err = config.Load(filepath.Join("testdata", "incidents-bad.yaml"), true, noEnv)
	for _, want := range []string{"incidents.poll_interval: 100ms", "incidents.overlap", "incidents.page_size: 20000", `incidents.group_by: "machine"`,
		`incidents.filters.severities: "Critical"`, "incidents.sinks[0].url", "must be https", "incidents.sinks[1].address", "incidents.sinks[1].network",
		"incidents.sinks[2].path: required", `incidents.sinks[3].name: "file" is used twice`, `incidents.sinks[3].type: "pigeon"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	_, err = config.Load(filepath.Join("testdata", "incidents-unknown-key.yaml"), true, noEnv)
	if err == nil || !strings.Contains(err.Error(), `unknown key "incidents.sinks[].hmac_secret"`) {
		t.Errorf("unknown sink key: %v", err)
	}

	c, err = config.Load(filepath.Join("testdata", "good.yaml"), true, env(map[string]string{
		"MDEBRIDGE_INCIDENTS_FILTERS_SEVERITIES": "High, Medium", "MDEBRIDGE_INCIDENTS_ENABLED": "false", "MDEBRIDGE_INCIDENTS_POLL_INTERVAL": "30s"}))
	if err != nil || c.Incidents.Enabled || len(c.Incidents.Filters.Severities) != 2 || c.Incidents.Filters.Severities[1] != "Medium" ||
		time.Duration(c.Incidents.PollInterval) != 30*time.Second || len(c.Incidents.Sinks) != 0 {
		t.Errorf("environment: %+v, %v", c.Incidents, err)
	}
}
