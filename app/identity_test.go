package app_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// identityConfig writes a configuration using auth kind against emu.
func identityConfig(t *testing.T, emu *emulatortest.Emu, auth, clientID string) *cli {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mdebridge.yaml")
	body := fmt.Sprintf(`azure:
  cloud: custom
  auth: %s
  tenant_id: %q
  client_id: %q
  ca_file: %q
  endpoints:
    login: %q
    mde: %q
`, auth, emu.App.TenantID, clientID, emu.CAFile, emu.URL+"/", emu.URL)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, config: path}
}

// Managed identity as App Service runs it: IDENTITY_ENDPOINT and
// IDENTITY_HEADER in the environment, which azidentity (MSAL) reads itself.
func TestManagedIdentity(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(30))
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "managedIdentity"})
	t.Setenv("IDENTITY_ENDPOINT", emu.URL+creds.IdentityEndpoint)
	// MSAL caches managed-identity tokens for the whole process, so the
	// refusal is tried before any token exists.
	t.Setenv("IDENTITY_HEADER", "wrong")
	c := identityConfig(t, emu, "managed_identity", creds.ClientID)
	if r := c.run("sync"); r.code != 1 || !strings.Contains(r.stderr, "authentication failed") {
		t.Errorf("wrong identity header: exit %d %q", r.code, r.stderr)
	}
	t.Setenv("IDENTITY_HEADER", creds.IdentityHeader)
	c = identityConfig(t, emu, "managed_identity", creds.ClientID)
	s, r := c.sync("--step", "machines")
	if r.code != 0 || s.Steps[0].Items != 30 {
		t.Fatalf("sync with a managed identity: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if out := c.run("doctor").stdout; !strings.Contains(out, "Token for app "+creds.ClientID) {
		t.Errorf("doctor:\n%s", out)
	}
}

// Workload identity as AKS runs it: a service-account token in the file
// named by AZURE_FEDERATED_TOKEN_FILE, trusted by the app's federated credential.
func TestWorkloadIdentity(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(30))
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "federated"})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(creds.FederatedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", tokenFile)
	c := identityConfig(t, emu, "workload_identity", creds.ClientID)
	if s, r := c.sync("--step", "machines"); r.code != 0 || s.Steps[0].Items != 30 {
		t.Fatalf("sync with workload identity: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	// Another app's token is not trusted by this app's federated credential.
	other := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "federated"})
	os.WriteFile(tokenFile, []byte(other.FederatedToken), 0o600)
	c = identityConfig(t, emu, "workload_identity", creds.ClientID)
	if r := c.run("sync"); r.code != 1 || !strings.Contains(r.stderr, "AADSTS70021") {
		t.Errorf("foreign service-account token: exit %d %q", r.code, r.stderr)
	}
}

// Certificate credentials, PEM with the key, as `emulate` and Entra hand them out.
func TestClientCertificate(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(30))
	creds := createApp(t, emu, emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "certificate"})
	pem := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(pem, []byte(creds.CertificatePEM), 0o600); err != nil {
		t.Fatal(err)
	}
	c := identityConfig(t, emu, "client_certificate", creds.ClientID)
	body, _ := os.ReadFile(c.config)
	os.WriteFile(c.config, append(body, []byte(fmt.Sprintf("  client_certificate_path: %q\n", pem))...), 0o600)
	if s, r := c.sync("--step", "machines"); r.code != 0 || s.Steps[0].Items != 30 {
		t.Fatalf("sync with a certificate: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}
