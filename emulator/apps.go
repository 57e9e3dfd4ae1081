package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/internal/atomicfile"
)

// AppSpec describes an application registration to create in the tenant,
// with the application permissions (roles) it has been granted.
type AppSpec struct {
	Roles       []string `json:"roles"`
	DisplayName string   `json:"displayName,omitempty"`
	// Credential is "secret" (default), "certificate", "federated" (workload
	// identity: AppCredentials.FederatedToken is a service-account token to
	// exchange) or "managedIdentity" (AppCredentials.IdentityEndpoint and
	// IdentityHeader, as App Service hands them to a managed identity).
	Credential      string    `json:"credential,omitempty"`
	SecretExpiresAt time.Time `json:"secretExpiresAt,omitempty"` // zero = never; past = token requests fail with AADSTS7000222
}

// AppCredentials are what a client needs to get tokens as the app.
type AppCredentials struct {
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret,omitempty"`
	CertificatePEM string `json:"certificatePem,omitempty"` // certificate + PKCS#8 key, for azidentity.ParseCertificates
	// FederatedToken is a Kubernetes-style service-account token (valid 24 h)
	// that the app's federated credential trusts: the file behind
	// AZURE_FEDERATED_TOKEN_FILE.
	FederatedToken string `json:"federatedToken,omitempty"`
	// IdentityEndpoint (a path on the emulator) and IdentityHeader are what
	// App Service puts in IDENTITY_ENDPOINT and IDENTITY_HEADER.
	IdentityEndpoint string `json:"identityEndpoint,omitempty"`
	IdentityHeader   string `json:"identityHeader,omitempty"`
}

// AllRoles returns every MDE application permission (mde-api.md §1.4).
func AllRoles() []string {
	return []string{
		"Alert.Read.All", "Alert.ReadWrite.All",
		"Machine.Read.All", "Machine.ReadWrite.All",
		"Machine.Isolate", "Machine.Scan", "Machine.CollectForensics", "Machine.RestrictExecution",
		"Machine.StopAndQuarantine", "Machine.Offboard", "Machine.LiveResponse",
		"AdvancedQuery.Read.All",
		"Ti.ReadWrite", "Ti.ReadWrite.All",
		"Vulnerability.Read.All", "Software.Read.All", "SecurityRecommendation.Read.All", "Score.Read.All",
		"RemediationTasks.Read.All",
		"User.Read.All", "File.Read.All", "Ip.Read.All", "URL.Read.All",
	}
}

// app is a registered application as the emulator stores it: secrets only
// as SHA-256 hashes (they are random, so a fast hash is enough), certificates
// only as their public part.
type app struct {
	ClientID        string    `json:"clientId"`
	ObjectID        string    `json:"objectId"` // the service principal: the token's oid and sub
	DisplayName     string    `json:"displayName"`
	Roles           []string  `json:"roles"`
	SecretSHA256    string    `json:"secretSha256,omitempty"`
	SecretExpiresAt time.Time `json:"secretExpiresAt,omitzero"`
	CertificateDER  []byte    `json:"certificate,omitempty"`
	// FederatedSubject is the subject of the app's federated credential
	// (issuer: the emulator's federation issuer, audience api://AzureADTokenExchange).
	FederatedSubject string `json:"federatedSubject,omitempty"`
	// IdentityHeaderSHA256 makes the app a managed identity reachable through
	// the App Service token endpoint with that header.
	IdentityHeaderSHA256 string    `json:"identityHeaderSha256,omitempty"`
	CreatedAt            time.Time `json:"createdAt"`

	cert *x509.Certificate
}

func (a *app) secretMatches(secret string) bool {
	if a.SecretSHA256 == "" {
		return false
	}
	want, err := hex.DecodeString(a.SecretSHA256)
	if err != nil {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// thumbprintMatches reports whether an assertion header's x5t (SHA-1) or
// x5t#S256 names the app's certificate. MSAL writes them in standard base64;
// RFC 7515 says base64url: both are accepted.
func (a *app) thumbprintMatches(x5t, x5tS256 string) bool {
	if a.cert == nil {
		return false
	}
	s1 := sha1.Sum(a.cert.Raw)
	s256 := sha256.Sum256(a.cert.Raw)
	match := func(header string, sum []byte) bool {
		if header == "" {
			return false
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(header); err == nil && subtle.ConstantTimeCompare(b, sum) == 1 {
				return true
			}
		}
		b, err := hex.DecodeString(header)
		return err == nil && subtle.ConstantTimeCompare(b, sum) == 1
	}
	return match(x5t, s1[:]) || match(x5tS256, s256[:])
}

// appRegistry is the tenant's application registrations, persisted to
// apps.json in the state directory when there is one.
type appRegistry struct {
	mu   sync.RWMutex
	apps map[string]*app // lower-case client id
	path string          // "" = memory only
}

const appsFile = "apps.json"

func loadApps(dir string) (*appRegistry, error) {
	r := &appRegistry{apps: map[string]*app{}}
	if dir == "" {
		return r, nil
	}
	r.path = filepath.Join(dir, appsFile)
	data, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load apps: %w", err)
	}
	var f struct {
		Apps []*app `json:"apps"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load apps from %s: %w", r.path, err)
	}
	for _, a := range f.Apps {
		if len(a.CertificateDER) > 0 {
			if a.cert, err = x509.ParseCertificate(a.CertificateDER); err != nil {
				return nil, fmt.Errorf("load apps from %s: app %s: %w", r.path, a.ClientID, err)
			}
		}
		r.apps[strings.ToLower(a.ClientID)] = a
	}
	return r, nil
}

// managedIdentity finds the managed identity that an App Service token
// request names: by its header, and by client id when the request names one
// (a user-assigned identity).
func (r *appRegistry) managedIdentity(header, clientID string) *app {
	if header == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(header))
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, a := range r.apps {
		want, err := hex.DecodeString(a.IdentityHeaderSHA256)
		if err != nil || len(want) == 0 || subtle.ConstantTimeCompare(sum[:], want) != 1 {
			continue
		}
		if clientID == "" || strings.EqualFold(clientID, a.ClientID) {
			return a
		}
	}
	return nil
}

func (r *appRegistry) get(clientID string) *app {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.apps[strings.ToLower(clientID)]
}

// saveLocked writes apps.json; the caller holds r.mu.
func (r *appRegistry) saveLocked() error {
	if r.path == "" {
		return nil
	}
	var f struct {
		Apps []*app `json:"apps"`
	}
	for _, a := range r.apps {
		f.Apps = append(f.Apps, a)
	}
	slices.SortFunc(f.Apps, func(a, b *app) int { return a.CreatedAt.Compare(b.CreatedAt) })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(r.path, append(data, '\n'), 0o600)
}

// create registers an app and returns its credentials; the secret or private
// key is returned here and never stored.
func (r *appRegistry) create(spec AppSpec, tenantID string, now time.Time) (AppCredentials, error) {
	kind := spec.Credential
	if kind == "" {
		kind = "secret"
	}
	if !slices.Contains([]string{"secret", "certificate", "federated", "managedIdentity"}, kind) {
		return AppCredentials{}, fmt.Errorf("create app: credential %q: want secret, certificate, federated or managedIdentity", spec.Credential)
	}
	for _, role := range spec.Roles {
		if strings.TrimSpace(role) == "" {
			return AppCredentials{}, errors.New("create app: empty role")
		}
	}
	a := &app{
		ClientID:    newGUID(),
		ObjectID:    newGUID(),
		DisplayName: spec.DisplayName,
		Roles:       slices.Clone(spec.Roles),
		CreatedAt:   now.UTC(),
	}
	if a.Roles == nil {
		a.Roles = []string{}
	}
	if a.DisplayName == "" {
		a.DisplayName = "mdebridge-emulator-" + a.ClientID[:8]
	}
	creds := AppCredentials{TenantID: tenantID, ClientID: a.ClientID}
	switch kind {
	case "secret":
		secret := newClientSecret()
		sum := sha256.Sum256([]byte(secret))
		a.SecretSHA256 = hex.EncodeToString(sum[:])
		a.SecretExpiresAt = spec.SecretExpiresAt.UTC()
		creds.ClientSecret = secret
	case "certificate":
		certPEM, cert, err := newAppCertificate(a.DisplayName, now)
		if err != nil {
			return AppCredentials{}, fmt.Errorf("create app: %w", err)
		}
		a.cert, a.CertificateDER = cert, cert.Raw
		creds.CertificatePEM = string(certPEM)
	case "federated":
		a.FederatedSubject = "system:serviceaccount:mdebridge:" + a.ClientID[:8]
	case "managedIdentity":
		header := newClientSecret()
		sum := sha256.Sum256([]byte(header))
		a.IdentityHeaderSHA256 = hex.EncodeToString(sum[:])
		creds.IdentityEndpoint, creds.IdentityHeader = managedIdentityPath, header
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apps[strings.ToLower(a.ClientID)] = a
	if err := r.saveLocked(); err != nil {
		delete(r.apps, strings.ToLower(a.ClientID))
		return AppCredentials{}, fmt.Errorf("create app: save: %w", err)
	}
	return creds, nil
}

// newAppCertificate makes a self-signed RSA certificate, as an administrator
// would upload to an app registration, and returns it with its private key
// in one PEM.
func newAppCertificate(name string, now time.Time) ([]byte, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	out := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return out, cert, nil
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return guidFromBytes(b[:])
}

// newClientSecret returns a secret shaped like Entra's: 40 characters with
// "8Q~" after the first three.
func newClientSecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~"
	var b [37]byte
	rand.Read(b[:])
	s := make([]byte, 0, 40)
	for i, c := range b {
		if i == 3 {
			s = append(s, "8Q~"...)
		}
		s = append(s, alphabet[int(c)%len(alphabet)])
	}
	return string(s)
}
