package emulator_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// postForm posts a token request and returns the status and decoded body.
func postForm(t *testing.T, emu *emulatortest.Emu, path string, form url.Values, basicUser, basicPass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, emu.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := emu.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("token endpoint Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode token response: %v", err)
	}
	return resp.StatusCode, body
}

// claims decodes a JWT's payload without verifying it.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	var c map[string]any
	if err := json.Unmarshal(decodeSegment(t, parts[1]), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenClientSecretPostAndBasic(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(1))
	app, err := emu.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All", "User.Read.All"}, DisplayName: "MDE-HelloWorld"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/" + emu.TenantID() + "/oauth2/v2.0/token"
	scope := "https://api.securitycenter.microsoft.com/.default openid offline_access profile"

	status, post := postForm(t, emu, path, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {scope}}, "", "")
	if status != 200 {
		t.Fatalf("client_secret_post: %d %v", status, post)
	}
	status, basic := postForm(t, emu, path, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, app.ClientID, app.ClientSecret)
	if status != 200 {
		t.Fatalf("client_secret_basic: %d %v", status, basic)
	}
	for name, body := range map[string]map[string]any{"post": post, "basic": basic} {
		if body["token_type"] != "Bearer" || body["expires_in"] != 3599.0 || body["ext_expires_in"] != 3599.0 {
			t.Errorf("%s: token response %v", name, body)
		}
		c := claims(t, body["access_token"].(string))
		want := map[string]any{
			"aud": "https://api.securitycenter.microsoft.com", "iss": "https://sts.windows.net/" + emu.TenantID() + "/",
			"tid": emu.TenantID(), "appid": app.ClientID, "app_displayname": "MDE-HelloWorld", "ver": "1.0",
			"roles": []any{"Machine.Read.All", "User.Read.All"}, "appidacr": "1", "idtyp": "app",
		}
		for k, v := range want {
			if diff := cmp.Diff(v, c[k]); diff != "" {
				t.Errorf("%s: claim %s (-want +got):\n%s", name, k, diff)
			}
		}
		if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 {
			t.Errorf("%s: lifetime %v s, want 3600", name, exp-iat)
		}
	}

	// By domain, and the v1 endpoint with resource=.
	status, v1 := postForm(t, emu, "/"+emu.Tenant().Domain()+"/oauth2/token",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "resource": {"https://api.securitycenter.microsoft.com"}}, "", "")
	if status != 200 {
		t.Fatalf("v1: %d %v", status, v1)
	}
	for _, k := range []string{"expires_in", "ext_expires_in", "expires_on", "not_before", "resource"} {
		if _, ok := v1[k].(string); !ok {
			t.Errorf("v1 reply %s = %#v, want a string", k, v1[k])
		}
	}
	if v1["resource"] != "https://api.securitycenter.microsoft.com" {
		t.Errorf("v1 resource = %v", v1["resource"])
	}

	// ARM and Graph tokens are minted too, without MDE roles.
	status, arm := postForm(t, emu, path, url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {"https://management.azure.com//.default"}}, "", "")
	if status != 200 {
		t.Fatalf("ARM: %d %v", status, arm)
	}
	if c := claims(t, arm["access_token"].(string)); c["aud"] != "https://management.azure.com/" || c["roles"] != nil {
		t.Errorf("ARM token aud=%v roles=%v", c["aud"], c["roles"])
	}
}

var aadDescription = regexp.MustCompile(`^AADSTS(\d+): .+ Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)

func TestTokenErrorsHaveEntraShape(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	emu := emulatortest.New(t, emulatortest.WithMachines(1), emulatortest.WithNow(func() time.Time { return now }))
	expired, err := emu.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All"}, SecretExpiresAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {emu.App.ClientID}, "client_secret": {emu.App.ClientSecret}, "scope": {"https://api.securitycenter.microsoft.com/.default"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}
	tid := emu.TenantID()
	tests := []struct {
		name, path string
		form       url.Values
		status     int
		err        string
		code       int
		text       string // start of the description after "AADSTSn: "
	}{
		{"wrong secret", "/" + tid + "/oauth2/v2.0/token", with("client_secret", "nope"), 401, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + emu.App.ClientID + "'."},
		{"unknown app", "/" + tid + "/oauth2/v2.0/token", with("client_id", "11111111-2222-3333-4444-555555555555"), 400, "unauthorized_client", 700016,
			"Application with identifier '11111111-2222-3333-4444-555555555555' was not found in the directory '" + emu.Tenant().DisplayName() + "'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."},
		{"unknown tenant", "/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token", good, 400, "invalid_request", 90002,
			"Tenant '00000000-0000-0000-0000-000000000001' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."},
		{"unknown domain", "/nosuch.onmicrosoft.com/oauth2/v2.0/token", good, 400, "invalid_request", 90002, "Tenant 'nosuch.onmicrosoft.com' not found."},
		{"malformed tenant", "/abc123testing/oauth2/v2.0/token", good, 400, "invalid_request", 900023,
			"Specified tenant identifier 'abc123testing' is neither a valid DNS name, nor a valid external domain."},
		{"expired secret", "/" + tid + "/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {expired.ClientID}, "client_secret": {expired.ClientSecret}, "scope": {"https://api.securitycenter.microsoft.com/.default"}}, 401, "invalid_client", 7000222,
			"The provided client secret keys for app '" + expired.ClientID + "' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."},
		{"unknown resource", "/" + tid + "/oauth2/v2.0/token", with("scope", "https://example.com/.default"), 400, "invalid_scope", 500011,
			"The resource principal named https://example.com was not found in the tenant named " + emu.Tenant().DisplayName() + "."},
		{"scope without .default", "/" + tid + "/oauth2/v2.0/token", with("scope", "https://api.securitycenter.microsoft.com/Machine.Read.All"), 400, "invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid."},
		{"no scope", "/" + tid + "/oauth2/v2.0/token", with("scope", ""), 400, "invalid_request", 900144,
			"The request body must contain the following parameter: 'scope'."},
		{"password grant", "/" + tid + "/oauth2/v2.0/token", with("grant_type", "password"), 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type 'password'."},
		{"no secret", "/" + tid + "/oauth2/v2.0/token", with("client_secret", ""), 401, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, emu, tt.path, tt.form, "", "")
			if status != tt.status || body["error"] != tt.err {
				t.Fatalf("got %d %v, want %d %s", status, body["error"], tt.status, tt.err)
			}
			keys := []string{}
			for k := range body {
				keys = append(keys, k)
			}
			if diff := cmp.Diff([]string{"correlation_id", "error", "error_codes", "error_description", "error_uri", "timestamp", "trace_id"}, sortStrings(keys)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			desc, _ := body["error_description"].(string)
			m := aadDescription.FindStringSubmatch(desc)
			if m == nil || m[1] != itoa(tt.code) {
				t.Errorf("error_description %q does not have the Entra shape for code %d", desc, tt.code)
			}
			if !strings.HasPrefix(desc, "AADSTS"+itoa(tt.code)+": "+tt.text) {
				t.Errorf("error_description %q\nwant text starting %q", desc, tt.text)
			}
			if diff := cmp.Diff([]any{float64(tt.code)}, body["error_codes"]); diff != "" {
				t.Errorf("error_codes (-want +got):\n%s", diff)
			}
			if body["error_uri"] != "https://login.microsoftonline.com/error?code="+itoa(tt.code) {
				t.Errorf("error_uri = %v", body["error_uri"])
			}
			if body["timestamp"] != "2026-03-01 12:00:00Z" {
				t.Errorf("timestamp = %v", body["timestamp"])
			}
		})
	}
}

func TestOpenIDConfigurationAndKeys(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(1))
	for _, tenant := range []string{emu.TenantID(), emu.Tenant().Domain(), "organizations"} {
		resp, body := emu.Get(t, "/"+tenant+"/v2.0/.well-known/openid-configuration", "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tenant, resp.StatusCode, body)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		base := emu.URL + "/" + emu.TenantID()
		if doc["issuer"] != base+"/v2.0" || doc["token_endpoint"] != base+"/oauth2/v2.0/token" || doc["authorization_endpoint"] != base+"/oauth2/v2.0/authorize" {
			t.Errorf("%s: discovery %v", tenant, doc)
		}
	}
	resp, body := emu.Get(t, "/"+emu.TenantID()+"/.well-known/openid-configuration", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"issuer":"https://sts.windows.net/`+emu.TenantID()+`/"`) {
		t.Errorf("v1 discovery: %d %s", resp.StatusCode, body)
	}
	resp, body = emu.Get(t, "/no-such-tenant.example/v2.0/.well-known/openid-configuration", "")
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"invalid_tenant"`) || !strings.Contains(string(body), "AADSTS90002") {
		t.Errorf("unknown tenant discovery: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/discovery/v2.0/keys", "/discovery/keys"} {
		resp, body = emu.Get(t, "/"+emu.TenantID()+p, "")
		var jwks struct {
			Keys []struct{ Kty, Kid, N, E string } `json:"keys"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &jwks) != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Kid == "" {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}
