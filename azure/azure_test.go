package azure_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/azure"
)

func TestClouds(t *testing.T) {
	tests := []struct {
		name, region                                 string
		login, mde, mdeScope, arm, graph, portalHost string
	}{
		{"public", "", "https://login.microsoftonline.com/", "https://api.securitycenter.microsoft.com", "https://api.securitycenter.microsoft.com/.default", "https://management.azure.com", "https://graph.microsoft.com", "security.microsoft.com"},
		{"public", "eu", "https://login.microsoftonline.com/", "https://eu.api.security.microsoft.com", "https://api.securitycenter.microsoft.com/.default", "https://management.azure.com", "https://graph.microsoft.com", "security.microsoft.com"},
		{"gcc", "", "https://login.microsoftonline.com/", "https://api-gcc.securitycenter.microsoft.us", "https://api-gcc.securitycenter.microsoft.us/.default", "https://management.azure.com", "https://graph.microsoft.com", "security.microsoft.com"},
		{"gcc-high", "", "https://login.microsoftonline.us/", "https://api-gov.securitycenter.microsoft.us", "https://api-gov.securitycenter.microsoft.us/.default", "https://management.usgovcloudapi.net", "https://graph.microsoft.us", "security.microsoft.us"},
		{"dod", "", "https://login.microsoftonline.us/", "https://api-gov.securitycenter.microsoft.us", "https://api-gov.securitycenter.microsoft.us/.default", "https://management.usgovcloudapi.net", "https://dod-graph.microsoft.us", "security.apps.mil"},
	}
	for _, tt := range tests {
		t.Run(tt.name+tt.region, func(t *testing.T) {
			c, err := azure.Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if c, err = c.WithRegion(tt.region); err != nil {
				t.Fatal(err)
			}
			got := []string{c.LoginAuthority, c.MDEBaseURL, c.MDEScope(), c.ARMBaseURL, c.GraphBaseURL}
			want := []string{tt.login, tt.mde, tt.mdeScope, tt.arm, tt.graph}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d = %q, want %q", i, got[i], want[i])
				}
			}
			if !strings.Contains(c.PortalURL, tt.portalHost) {
				t.Errorf("portal %q", c.PortalURL)
			}
		})
	}
	if _, err := azure.Lookup("moon"); err == nil {
		t.Error("unknown cloud accepted")
	}
	gov, _ := azure.Lookup("gcc-high")
	if _, err := gov.WithRegion("eu"); err == nil {
		t.Error("region accepted outside the public cloud")
	}
	pub, _ := azure.Lookup("public")
	if _, err := pub.WithRegion("xx"); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestOverrideKeepsRealAudience(t *testing.T) {
	c, _ := azure.Lookup("custom")
	c = c.Override(azure.Endpoints{Login: "https://127.0.0.1:8443", MDE: "https://127.0.0.1:8443/"})
	if c.LoginAuthority != "https://127.0.0.1:8443/" || c.MDEBaseURL != "https://127.0.0.1:8443" {
		t.Errorf("override not applied: %+v", c)
	}
	if c.MDEScope() != "https://api.securitycenter.microsoft.com/.default" {
		t.Errorf("MDE scope %q, want the real audience", c.MDEScope())
	}
	if c.ARMScope() != "https://management.azure.com/.default" {
		t.Errorf("ARM scope %q", c.ARMScope())
	}
}

func TestClassifyAuthError(t *testing.T) {
	tests := []struct {
		msg      string
		code     int
		wantHint string
	}{
		{"ClientSecretCredential authentication failed\nPOST https://login/x\n{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided.\"}", 7000215, "Value, not its Secret ID"},
		{"... AADSTS7000222: The provided client secret keys for app 'x' are expired.", 7000222, "create a new secret"},
		{"... AADSTS700016: Application with identifier 'x' was not found", 700016, "azure.client_id"},
		{"... AADSTS90002: Tenant 'x' not found.", 90002, "azure.tenant_id"},
		{"... AADSTS900023: Specified tenant identifier", 900023, "GUID"},
	}
	for _, tt := range tests {
		err := azure.ClassifyAuthError(errors.New(tt.msg))
		var ae *mdebridge.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("%T is not an AuthError", err)
		}
		if ae.Code != tt.code || !strings.Contains(ae.Hint, tt.wantHint) {
			t.Errorf("code %d hint %q; want %d and %q", ae.Code, ae.Hint, tt.code, tt.wantHint)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("message is not one line: %q", err)
		}
	}
	unknown := azure.ClassifyAuthError(errors.New("something odd\nmore detail"))
	if !strings.Contains(unknown.Error(), "something odd") || strings.Contains(unknown.Error(), "more detail") {
		t.Errorf("unclassified error: %q", unknown)
	}
}

func TestNewHTTPClientCAFile(t *testing.T) {
	if _, err := azure.NewHTTPClient(""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := azure.NewHTTPClient(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
	if _, err := azure.NewHTTPClient(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestNewCredentialKinds(t *testing.T) {
	c, _ := azure.Lookup("custom")
	c = c.Override(azure.Endpoints{Login: "https://127.0.0.1:1/"})
	for _, kind := range []string{"client_secret", "managed_identity", "azure_cli"} {
		if _, err := azure.NewCredential(azure.CredentialOptions{Cloud: c, Kind: kind, TenantID: "t", ClientID: "c", ClientSecret: "s"}); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if _, err := azure.NewCredential(azure.CredentialOptions{Cloud: c, Kind: "client_certificate", CertificatePath: "/nonexistent.pem"}); err == nil {
		t.Error("missing certificate accepted")
	}
	if _, err := azure.NewCredential(azure.CredentialOptions{Cloud: c, Kind: "client_secret"}); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := azure.NewCredential(azure.CredentialOptions{Cloud: c, Kind: "magic"}); err == nil {
		t.Error("unknown kind accepted")
	}
}
