package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/mdebridge/mdebridge"
)

// CredentialOptions says how to authenticate.
type CredentialOptions struct {
	Cloud Cloud
	// Kind is client_secret, client_certificate, managed_identity,
	// workload_identity or azure_cli.
	Kind                string
	TenantID            string
	ClientID            string
	ClientSecret        string
	CertificatePath     string
	CertificatePassword string
	// HTTPClient carries token requests; it must trust the authority's CA.
	HTTPClient *http.Client
}

// NewCredential returns an azidentity credential for the options. Tokens are
// cached and refreshed by azidentity.
func NewCredential(o CredentialOptions) (azcore.TokenCredential, error) {
	co := azcore.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: o.Cloud.LoginAuthority},
		// Token requests are retried by the sync engine's own policy; one
		// quick retry here covers a dropped connection.
		Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 500 * time.Millisecond},
	}
	if o.HTTPClient != nil {
		co.Transport = o.HTTPClient
	}
	// Instance discovery asks login.microsoftonline.com about the authority;
	// a custom authority (the emulator, a private endpoint) is not known there.
	disco := o.Cloud.Name == "custom"
	switch o.Kind {
	case "", "client_secret":
		if o.ClientSecret == "" {
			return nil, errors.New("client secret authentication needs a client secret")
		}
		return azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, o.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: disco})
	case "client_certificate":
		data, err := os.ReadFile(o.CertificatePath)
		if err != nil {
			return nil, fmt.Errorf("read client certificate: %w", err)
		}
		var pw []byte
		if o.CertificatePassword != "" {
			pw = []byte(o.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", o.CertificatePath, err)
		}
		return azidentity.NewClientCertificateCredential(o.TenantID, o.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: disco, SendCertificateChain: true})
	case "managed_identity":
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(mo)
	case "workload_identity":
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, TenantID: o.TenantID, ClientID: o.ClientID, DisableInstanceDiscovery: disco})
	case "azure_cli":
		return azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: o.TenantID})
	}
	return nil, fmt.Errorf("unknown authentication method %q", o.Kind)
}

// NewHTTPClient returns an HTTP client that trusts the system's CAs and, when
// caFile is set, the CAs in that PEM file too. TLS verification stays on.
func NewHTTPClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = 3 * time.Minute
	return &http.Client{Transport: tr}, nil
}

// TokenSource hands out bearer tokens for one scope.
type TokenSource struct {
	cred  azcore.TokenCredential
	scope string
	kind  string
}

// NewTokenSource returns a source of tokens for scope from a credential of
// the given kind (as in CredentialOptions.Kind, for error hints).
func NewTokenSource(cred azcore.TokenCredential, scope, kind string) *TokenSource {
	return &TokenSource{cred: cred, scope: scope, kind: kind}
}

// kindHints say what to check when a credential without an Entra error code fails.
var kindHints = map[string]string{
	"managed_identity":  "check that a managed identity is assigned to this host and, for a user-assigned one, that azure.client_id is its client id",
	"workload_identity": "check AZURE_FEDERATED_TOKEN_FILE and the app's federated credential (issuer, subject, audience api://AzureADTokenExchange)",
	"azure_cli":         "run 'az login' (and 'az account set') as the user mdebridge runs as",
}

// Token returns a valid access token. Failures are *mdebridge.AuthError with
// the Entra error code and what to do about it.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.scope}})
	if err != nil {
		err = ClassifyAuthError(err)
		var ae *mdebridge.AuthError
		if errors.As(err, &ae) && ae.Hint == "" {
			ae.Hint = kindHints[s.kind]
		}
		return "", err
	}
	return tok.Token, nil
}

// Scope is the scope the source asks tokens for.
func (s *TokenSource) Scope() string { return s.scope }

var (
	aadsts = regexp.MustCompile(`AADSTS(\d+)`)
	// serviceMessage finds the service's own words in a failed response.
	serviceMessage = regexp.MustCompile(`"(message|error_description)"\s*:\s*"([^"]+)"`)
)

// authCodes explains the Entra errors users meet most.
var authCodes = map[int]struct{ cause, hint string }{
	7000215: {"invalid client secret", "use the secret's Value, not its Secret ID, from Entra ID > App registrations > your app > Certificates & secrets, in azure.client_secret"},
	7000222: {"the client secret has expired", "create a new secret in Entra ID > App registrations > your app > Certificates & secrets and put it in azure.client_secret"},
	700016:  {"no application with this client ID in the tenant", "check azure.client_id and azure.tenant_id, and that an administrator consented to the app in this tenant"},
	90002:   {"the tenant does not exist in this cloud", "check azure.tenant_id and azure.cloud"},
	900023:  {"the tenant ID is malformed", "azure.tenant_id must be the tenant's GUID or one of its verified domains"},
	500011:  {"the MDE API is not known in this tenant", "check azure.cloud and that Microsoft Defender for Endpoint is provisioned in the tenant"},
	700027:  {"the certificate assertion was rejected", "upload the certificate's public key to the app registration, or check azure.client_certificate_path"},
	700024:  {"the client assertion is outside its validity window", "check this machine's clock"},
	53003:   {"blocked by a Conditional Access policy", "exclude the workload identity from the policy or sign in from an allowed location"},
	70011:   {"the requested scope is invalid", "check azure.endpoints.mde_resource"},
}

// ClassifyAuthError turns a credential failure into *mdebridge.AuthError.
func ClassifyAuthError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ae := &mdebridge.AuthError{Err: err}
	if m := aadsts.FindStringSubmatch(err.Error()); m != nil {
		ae.Code, _ = strconv.Atoi(m[1])
		if c, ok := authCodes[ae.Code]; ok {
			ae.Cause, ae.Hint = c.cause, c.hint
			return ae
		}
		ae.Cause = firstLine(err.Error())
		return ae
	}
	var cu *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &cu) && cu.RawResponse != nil:
		ae.Cause = fmt.Sprintf("the token service answered %s", cu.RawResponse.Status)
		if m := serviceMessage.FindStringSubmatch(err.Error()); m != nil {
			ae.Cause += ": " + m[2]
		}
	default:
		ae.Cause = firstLine(err.Error())
		if strings.Contains(ae.Cause, "certificate") {
			ae.Hint = "if the service uses a private CA (the emulator does), set azure.ca_file to it"
		}
	}
	return ae
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
