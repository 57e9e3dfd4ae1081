package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Workload identity and managed identity, the two credentials without a
// secret of their own.
//
// Workload identity (AKS): the cluster's OIDC issuer signs a service-account
// token; the app registration has a federated credential trusting that issuer
// and subject; the workload sends the token as a client assertion. The
// emulator plays the cluster's issuer too: it signs the service-account token
// with its own key (AppCredentials.FederatedToken).
//
// Managed identity: the host (App Service here) runs a local token endpoint
// named by IDENTITY_ENDPOINT, guarded by the IDENTITY_HEADER secret.

// federationAudience is the audience Entra requires of federated tokens.
const federationAudience = "api://AzureADTokenExchange"

// managedIdentityPath is the App Service token endpoint on the emulator.
const managedIdentityPath = "/msi/token"

// federationIssuer is the emulated cluster's OIDC issuer.
func (s *Server) federationIssuer() string {
	return "https://oidc.emulator.mdebridge.invalid/" + s.tenant.ID() + "/"
}

type federatedClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Nbf int64  `json:"nbf"`
	Exp int64  `json:"exp"`
}

// federatedToken signs a 24-hour service-account token for a's federated credential.
func (s *Server) federatedToken(a *app) (string, error) {
	now := s.now().UTC()
	return s.signer.sign(federatedClaims{
		Iss: s.federationIssuer(), Sub: a.FederatedSubject, Aud: federationAudience,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(24 * time.Hour).Unix(),
	})
}

// checkFederatedAssertion verifies a client assertion issued by the
// emulated cluster against the app's federated credential.
func (s *Server) checkFederatedAssertion(x *exchange, a *app, j *jwt) bool {
	fail := func(code int, text string) bool {
		x.aadFail(http.StatusUnauthorized, "invalid_client", code, text)
		return false
	}
	if j.verify(&s.signer.key.PublicKey) != nil {
		return fail(700027, "Client assertion failed signature validation.")
	}
	var c struct {
		Sub string      `json:"sub"`
		Aud audience    `json:"aud"`
		Exp numericDate `json:"exp"`
		Nbf numericDate `json:"nbf"`
	}
	if err := json.Unmarshal(j.claims, &c); err != nil {
		return fail(50027, "JWT token is invalid or malformed.")
	}
	if a.FederatedSubject == "" || c.Sub != a.FederatedSubject || !slices.Contains(c.Aud, federationAudience) {
		return fail(70021, fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.",
			s.federationIssuer(), c.Sub, fmt.Sprint([]string(c.Aud))))
	}
	now := s.now()
	exp := time.Unix(int64(c.Exp), 0)
	if c.Exp == 0 || now.After(exp.Add(clockSkew)) {
		return fail(700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format("2006-01-02T15:04:05.0000000Z"), exp.UTC().Format("2006-01-02T15:04:05.0000000Z")))
	}
	return true
}

func (s *Server) addManagedIdentityRoutes() {
	s.routes.add(&route{method: "GET", template: managedIdentityPath, surface: surfaceEntra, handle: s.managedIdentityToken})
}

// managedIdentityToken is App Service's identity endpoint (api-version
// 2019-08-01): GET with the X-IDENTITY-HEADER secret, resource, and
// client_id for a user-assigned identity.
func (s *Server) managedIdentityToken(x *exchange) {
	q := x.r.URL.Query()
	fail := func(status int, msg string) {
		x.json(status, map[string]any{"statusCode": status, "message": msg, "correlationId": newGUID()})
	}
	if v := q.Get("api-version"); v != "2019-08-01" {
		fail(http.StatusBadRequest, fmt.Sprintf("The api-version '%s' is not supported; use 2019-08-01.", v))
		return
	}
	a := s.apps.managedIdentity(x.r.Header.Get("X-IDENTITY-HEADER"), q.Get("client_id"))
	if a == nil {
		if x.r.Header.Get("X-IDENTITY-HEADER") == "" {
			fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing.")
			return
		}
		fail(http.StatusBadRequest, "Unable to load the proper Managed Identity.")
		return
	}
	resource := q.Get("resource")
	kind := resourceOf(resource)
	if kind == 0 {
		fail(http.StatusBadRequest, fmt.Sprintf("AADSTS500011: The resource principal named %s was not found in the tenant named %s.", resource, s.tenant.DisplayName()))
		return
	}
	tok, claims, err := s.mintToken(a, resource, kind, "2")
	if err != nil {
		s.log.Error("emulator: sign token", "err", err)
		fail(http.StatusInternalServerError, "A transient error has occurred.")
		return
	}
	s.log.Info("emulator: managed identity token issued", "appid", a.ClientID, "resource", resource)
	x.json(http.StatusOK, map[string]string{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(claims.Exp, 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    a.ClientID,
	})
}
