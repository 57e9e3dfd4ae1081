package emulatortest_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clientOptions points azidentity at the emulator the way mdebridge's
// azure package does: the emulator as authority host, its CA trusted.
func clientOptions(emu *emulatortest.Emu) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: emu.URL + "/"},
		Transport: emu.Client,
	}
}

// listMachines calls the MDE API with the token and returns the status.
func listMachines(t *testing.T, emu *emulatortest.Emu, tok string) int {
	t.Helper()
	resp, body := emu.Get(t, "/api/machines?$top=5", tok)
	if resp.StatusCode == http.StatusOK {
		var page struct{ Value []json.RawMessage }
		if err := json.Unmarshal(body, &page); err != nil || len(page.Value) != 5 {
			t.Errorf("page: %v, %d machines", err, len(page.Value))
		}
	}
	return resp.StatusCode
}

func TestAzidentityClientSecretCredential(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	cred, err := azidentity.NewClientSecretCredential(emu.App.TenantID, emu.App.ClientID, emu.App.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(emu), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://api.securitycenter.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if status := listMachines(t, emu, tok.Token); status != http.StatusOK {
		t.Errorf("MDE with azidentity's token: %d", status)
	}

	// A wrong secret surfaces Entra's error through azidentity.
	bad, err := azidentity.NewClientSecretCredential(emu.App.TenantID, emu.App.ClientID, "wrong",
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(emu), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://api.securitycenter.microsoft.com/.default"}}); err == nil {
		t.Error("wrong secret accepted")
	} else if !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestAzidentityClientCertificateCredential(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	app, err := emu.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "certificate"})
	if err != nil {
		t.Fatal(err)
	}
	certs, key, err := azidentity.ParseCertificates([]byte(app.CertificatePEM), nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientCertificateCredential(app.TenantID, app.ClientID, certs, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(emu), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://api.securitycenter.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if status := listMachines(t, emu, tok.Token); status != http.StatusOK {
		t.Errorf("MDE with a certificate credential's token: %d", status)
	}
}

// MSAL asks login.microsoftonline.com for instance discovery whatever the
// authority host, so a client pointed at the emulator by URL (not by DNS)
// must disable it, as mdebridge does.
func TestAzidentityWithTenantDomain(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(20))
	cred, err := azidentity.NewClientSecretCredential(emu.Tenant().Domain(), emu.App.ClientID, emu.App.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(emu), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://api.securitycenter.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if status := listMachines(t, emu, tok.Token); status != http.StatusOK {
		t.Errorf("MDE: %d", status)
	}
}

func TestHelpers(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(3), emulatortest.WithSeed(5))
	if data, err := os.ReadFile(emu.CAFile); err != nil || string(data) != string(emu.CA.CertPEM()) {
		t.Errorf("CAFile: %v", err)
	}
	ids := emu.AddMachines(4)
	if len(ids) != 4 || emu.Tenant().MachineCount() != 7 {
		t.Errorf("AddMachines: %d ids, %d machines", len(ids), emu.Tenant().MachineCount())
	}
	if status := listMachines(t, emu, emu.Token(t, "Alert.Read.All")); status != http.StatusForbidden {
		t.Errorf("token without machine roles: %d", status)
	}
	if st := emu.Stats(); st.Calls["GET /api/machines"] != 1 {
		t.Errorf("stats %+v", st)
	}
}
