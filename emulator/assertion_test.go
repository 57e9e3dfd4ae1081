package emulator_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// certKey reads the certificate and key of a certificate app's PEM.
func certKey(t *testing.T, pemData string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	rest := []byte(pemData)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			cert = c
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			key = k.(*rsa.PrivateKey)
		}
	}
	if cert == nil || key == nil {
		t.Fatalf("certificate PEM lacks a certificate or a key:\n%s", pemData)
	}
	return cert, key
}

// assertion builds a client assertion as MSAL does (PS256 with x5t#S256
// in standard base64) or as ADFS-style clients do (RS256 with x5t).
func assertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, alg, clientID, aud string, exp time.Time) string {
	t.Helper()
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if alg == "PS256" {
		sum := sha256.Sum256(cert.Raw)
		header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	} else {
		sum := sha1.Sum(cert.Raw)
		header["x5t"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	claims := map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": "1", "nbf": exp.Add(-10 * time.Minute).Unix(), "exp": exp.Unix()}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokenWithCertificateAssertion(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	emu := emulatortest.New(t, emulatortest.WithMachines(1), emulatortest.WithNow(func() time.Time { return now }))
	app, err := emu.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All"}, Credential: "certificate"})
	if err != nil {
		t.Fatal(err)
	}
	if app.ClientSecret != "" || !strings.Contains(app.CertificatePEM, "PRIVATE KEY") {
		t.Fatalf("certificate app credentials: %+v", app)
	}
	cert, key := certKey(t, app.CertificatePEM)
	other, err := emu.CreateApp(emulator.AppSpec{Credential: "certificate"})
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey := certKey(t, other.CertificatePEM)

	path := "/" + emu.TenantID() + "/oauth2/v2.0/token"
	endpoint := emu.URL + path
	form := func(a string) url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {app.ClientID},
			"scope":                 {"https://api.securitycenter.microsoft.com/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {a},
		}
	}
	for _, alg := range []string{"PS256", "RS256"} {
		status, body := postForm(t, emu, path, form(assertion(t, cert, key, alg, app.ClientID, endpoint, now.Add(5*time.Minute))), "", "")
		if status != 200 {
			t.Fatalf("%s: %d %v", alg, status, body)
		}
		if c := claims(t, body["access_token"].(string)); c["appid"] != app.ClientID || c["appidacr"] != "2" {
			t.Errorf("%s: claims %v", alg, c)
		}
	}

	refused := []struct {
		name      string
		assertion string
		code      float64
	}{
		{"expired", assertion(t, cert, key, "PS256", app.ClientID, endpoint, now.Add(-time.Hour)), 700024},
		{"wrong audience", assertion(t, cert, key, "PS256", app.ClientID, "https://login.microsoftonline.com/other/oauth2/v2.0/token", now.Add(5*time.Minute)), 50027},
		{"another app's certificate", assertion(t, otherCert, otherKey, "PS256", app.ClientID, endpoint, now.Add(5*time.Minute)), 700027},
		{"signed with the wrong key", assertion(t, cert, otherKey, "PS256", app.ClientID, endpoint, now.Add(5*time.Minute)), 700027},
		{"issuer is another app", assertion(t, cert, key, "PS256", other.ClientID, endpoint, now.Add(5*time.Minute)), 700021},
		{"garbage", "not.a.jwt", 50027},
	}
	for _, tt := range refused {
		status, body := postForm(t, emu, path, form(tt.assertion), "", "")
		codes, _ := body["error_codes"].([]any)
		if status != 401 || body["error"] != "invalid_client" || len(codes) != 1 || codes[0] != tt.code {
			t.Errorf("%s: got %d %v %v, want 401 invalid_client %v", tt.name, status, body["error"], codes, tt.code)
		}
	}
}
