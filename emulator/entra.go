package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Entra ID (Azure AD) part: OpenID discovery, signing keys and the
// client-credentials token endpoints, v1 and v2, with errors in Entra's own
// shape and wording.

func (s *Server) addEntraRoutes() {
	add := func(method, template string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceEntra, handle: h})
	}
	add("GET", "/{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfigV2)
	add("GET", "/{tenant}/.well-known/openid-configuration", s.openIDConfigV1)
	add("GET", "/{tenant}/discovery/v2.0/keys", s.jwks)
	add("GET", "/{tenant}/discovery/keys", s.jwks)
	add("GET", "/common/discovery/instance", s.instanceDiscovery)
	add("POST", "/{tenant}/oauth2/v2.0/token", s.tokenV2)
	add("POST", "/{tenant}/oauth2/token", s.tokenV1)
}

// aadError is Entra's error body.
type aadError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// aadFail writes an Entra error: error_description is "AADSTS<code>: <text>
// Trace ID: ... Correlation ID: ... Timestamp: ...". The correlation id is
// the client's client-request-id when it sent one, as Entra does.
func (x *exchange) aadFail(status int, errCode string, code int, text string) {
	now := x.s.now().UTC().Format("2006-01-02 15:04:05Z")
	trace := newGUID()
	corr := x.r.Header.Get("client-request-id")
	if !isGUID(corr) {
		corr = newGUID()
	}
	x.s.log.Info("emulator: token request refused", "route", x.route.key, "status", status, "error", errCode, "code", code, "text", text)
	x.json(status, aadError{
		Error:            errCode,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", code, text, trace, corr, now),
		ErrorCodes:       []int{code},
		Timestamp:        now,
		TraceID:          trace,
		CorrelationID:    corr,
		ErrorURI:         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(code),
	})
}

// tenantCheck resolves the {tenant} path segment: the tenant's GUID or its
// domain. Otherwise it returns the Entra error for a malformed (900023) or
// unknown (90002) tenant.
func (s *Server) tenantCheck(seg string) (code int, text string) {
	t := s.tenant
	if strings.EqualFold(seg, t.ID()) || strings.EqualFold(seg, t.Domain()) {
		return 0, ""
	}
	if isGUID(seg) || isDNSName(seg) {
		return 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", seg)
	}
	return 900023, fmt.Sprintf("Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", seg)
}

func isDNSName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

var multiTenantAliases = []string{"common", "organizations", "consumers"}

// discoveryTenant checks the tenant of a discovery request; the
// multi-tenant aliases are answered for this tenant.
func (s *Server) discoveryTenant(x *exchange) bool {
	seg := x.param("tenant")
	if slices.Contains(multiTenantAliases, strings.ToLower(seg)) {
		return true
	}
	if code, text := s.tenantCheck(seg); code != 0 {
		x.aadFail(http.StatusBadRequest, "invalid_tenant", code, text)
		return false
	}
	return true
}

func (s *Server) openIDConfigV2(x *exchange) {
	if !s.discoveryTenant(x) {
		return
	}
	base := x.baseURL() + "/" + s.tenant.ID()
	x.json(http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

func (s *Server) openIDConfigV1(x *exchange) {
	if !s.discoveryTenant(x) {
		return
	}
	base := x.baseURL() + "/" + s.tenant.ID()
	x.json(http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
		"scopes_supported":                      []string{"openid"},
		"issuer":                                "https://sts.windows.net/" + s.tenant.ID() + "/",
		"authorization_endpoint":                base + "/oauth2/authorize",
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

func (s *Server) jwks(x *exchange) {
	if !s.discoveryTenant(x) {
		return
	}
	x.json(http.StatusOK, map[string]any{"keys": []jwk{s.signer.jwk()}})
}

// instanceDiscovery answers MSAL's instance discovery, for clients that do
// not disable it, with this host as the only alias.
func (s *Server) instanceDiscovery(x *exchange) {
	host := x.r.Host
	tenant := s.tenant.ID()
	if auth, err := url.Parse(x.r.URL.Query().Get("authorization_endpoint")); err == nil {
		if parts := strings.Split(strings.Trim(auth.Path, "/"), "/"); len(parts) > 0 && parts[0] != "" {
			tenant = parts[0]
		}
	}
	x.json(http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": x.baseURL() + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host, "preferred_cache": host, "aliases": []string{host},
		}},
	})
}

func (s *Server) tokenV2(x *exchange) { s.token(x, 2) }
func (s *Server) tokenV1(x *exchange) { s.token(x, 1) }

// oidcScopes are the scopes MSAL adds to every request; a client-credentials
// request ignores them.
var oidcScopes = []string{"openid", "offline_access", "profile", "email"}

// token is the client-credentials grant: client_secret_post,
// client_secret_basic or a certificate assertion (private_key_jwt).
func (s *Server) token(x *exchange, version int) {
	r := x.r
	r.Body = http.MaxBytesReader(x.w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		x.aadFail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	if code, text := s.tenantCheck(x.param("tenant")); code != 0 {
		if slices.Contains(multiTenantAliases, strings.ToLower(x.param("tenant"))) {
			// Client credentials need a tenant; an alias names none.
			code, text = 50059, "No tenant-identifying information found in either the request or implied by any provided credentials."
		}
		x.aadFail(http.StatusBadRequest, "invalid_request", code, text)
		return
	}
	missing := func(p string) {
		x.aadFail(http.StatusBadRequest, "invalid_request", 900144, fmt.Sprintf("The request body must contain the following parameter: '%s'.", p))
	}
	grant := form.Get("grant_type")
	if grant == "" {
		missing("grant_type")
		return
	}
	if grant != "client_credentials" {
		x.aadFail(http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
		return
	}

	clientID, secret, basic := basicAuth(r)
	if !basic {
		clientID, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if clientID == "" {
		missing("client_id")
		return
	}
	a := s.apps.get(clientID)
	if a == nil {
		x.aadFail(http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, s.tenant.DisplayName()))
		return
	}

	// The resource: v2 names it in scope ("<resource>/.default"), v1 in
	// resource. A missing parameter is refused at once; a wrong value only
	// after the client has authenticated, as Entra does.
	var resource string
	var badResource func()
	if version == 2 {
		raw := form.Get("scope")
		if strings.TrimSpace(raw) == "" {
			missing("scope")
			return
		}
		var defaults []string
		for sc := range strings.FieldsSeq(raw) {
			if slices.Contains(oidcScopes, strings.ToLower(sc)) {
				continue
			}
			defaults = append(defaults, sc)
		}
		if len(defaults) == 1 && strings.HasSuffix(strings.ToLower(defaults[0]), "/.default") {
			resource = defaults[0][:len(defaults[0])-len("/.default")]
		} else {
			badResource = func() {
				x.aadFail(http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf(
					"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", raw))
			}
		}
	} else {
		resource = form.Get("resource")
		if resource == "" {
			missing("resource")
			return
		}
	}
	kind := resourceOf(resource)
	if kind == 0 && badResource == nil {
		errCode := "invalid_resource"
		if version == 2 {
			errCode = "invalid_scope"
		}
		badResource = func() {
			x.aadFail(http.StatusBadRequest, errCode, 500011, fmt.Sprintf(
				"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
				resource, s.tenant.DisplayName()))
		}
	}

	// The client's credential.
	acr := "1"
	if assertion := form.Get("client_assertion"); assertion != "" {
		if t := form.Get("client_assertion_type"); t != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			x.aadFail(http.StatusBadRequest, "invalid_request", 50027, fmt.Sprintf("JWT token is invalid or malformed: client_assertion_type '%s' is not supported.", t))
			return
		}
		if !s.checkAssertion(x, a, assertion) {
			return
		}
		acr = "2"
	} else {
		if secret == "" {
			x.aadFail(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
			return
		}
		if !a.secretMatches(secret) {
			x.aadFail(http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", a.ClientID))
			return
		}
		if !a.SecretExpiresAt.IsZero() && !s.now().Before(a.SecretExpiresAt) {
			x.aadFail(http.StatusUnauthorized, "invalid_client", 7000222, fmt.Sprintf(
				"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", a.ClientID))
			return
		}
	}

	if badResource != nil {
		badResource()
		return
	}

	tok, claims, err := s.mintToken(a, resource, kind, acr)
	if err != nil {
		s.log.Error("emulator: sign token", "err", err)
		x.aadFail(http.StatusInternalServerError, "server_error", 90033, "A transient error has occurred. Please try again.")
		return
	}
	now := time.Unix(claims.Iat, 0)
	s.log.Info("emulator: token issued", "appid", a.ClientID, "resource", resource, "roles", claims.Roles)
	x.w.Header().Set("Cache-Control", "no-store, no-cache")
	x.w.Header().Set("Pragma", "no-cache")
	if version == 2 {
		x.json(http.StatusOK, struct {
			TokenType    string `json:"token_type"`
			ExpiresIn    int    `json:"expires_in"`
			ExtExpiresIn int    `json:"ext_expires_in"`
			AccessToken  string `json:"access_token"`
		}{"Bearer", 3599, 3599, tok})
		return
	}
	x.json(http.StatusOK, struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    string `json:"expires_in"`
		ExtExpiresIn string `json:"ext_expires_in"`
		ExpiresOn    string `json:"expires_on"`
		NotBefore    string `json:"not_before"`
		Resource     string `json:"resource"`
		AccessToken  string `json:"access_token"`
	}{"Bearer", "3599", "3599", strconv.FormatInt(now.Unix()+3599, 10), strconv.FormatInt(claims.Nbf, 10), resource, tok})
}

// mintToken signs an access token for app a and resource: acr is "1" for a
// secret, "2" for a certificate, federated or managed-identity credential.
func (s *Server) mintToken(a *app, resource string, kind resourceKind, acr string) (string, tokenClaims, error) {
	now := s.now().UTC()
	claims := tokenClaims{
		Aud:            resource,
		Iss:            "https://sts.windows.net/" + s.tenant.ID() + "/",
		Iat:            now.Unix(),
		Nbf:            now.Unix(),
		Exp:            now.Add(time.Hour).Unix(),
		Aio:            randomOpaque(42),
		AppDisplayName: a.DisplayName,
		AppID:          a.ClientID,
		AppIDAcr:       acr,
		Idp:            "https://sts.windows.net/" + s.tenant.ID() + "/",
		Idtyp:          "app",
		Oid:            a.ObjectID,
		Rh:             "0." + randomOpaque(60) + ".",
		Roles:          rolesFor(kind, a.Roles),
		Sub:            a.ObjectID,
		Tid:            s.tenant.ID(),
		Uti:            randomOpaque(22),
		Ver:            "1.0",
	}
	tok, err := s.signer.sign(claims)
	return tok, claims, err
}

// rolesFor returns the app's roles that belong to the resource: MDE's
// permissions for MDE, the others (Graph's) for Graph, none for ARM, whose
// access is Azure RBAC.
func rolesFor(kind resourceKind, roles []string) []string {
	mde := AllRoles()
	var out []string
	for _, r := range roles {
		isMDE := slices.Contains(mde, r)
		if (kind == resourceMDE && isMDE) || (kind == resourceGraph && !isMDE) {
			out = append(out, r)
		}
	}
	return out
}

// basicAuth reads client_secret_basic credentials, which RFC 6749 has
// form-URL-encoded before base64.
func basicAuth(r *http.Request) (id, secret string, ok bool) {
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	u, p, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if v, err := url.QueryUnescape(u); err == nil {
		u = v
	}
	if v, err := url.QueryUnescape(p); err == nil {
		p = v
	}
	return u, p, true
}

// checkAssertion verifies a certificate credential: a JWT signed with the
// app's certificate key, naming the certificate by thumbprint, issued by and
// about the app, for this token endpoint, and within its lifetime.
func (s *Server) checkAssertion(x *exchange, a *app, assertion string) bool {
	fail := func(code int, text string) bool {
		x.aadFail(http.StatusUnauthorized, "invalid_client", code, text)
		return false
	}
	j, err := parseJWT(assertion)
	if err != nil {
		return fail(50027, "JWT token is invalid or malformed.")
	}
	var issuer struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(j.claims, &issuer) == nil && issuer.Iss == s.federationIssuer() {
		return s.checkFederatedAssertion(x, a, j)
	}
	if !a.thumbprintMatches(j.header.X5t, j.header.X5tS256) {
		thumb := j.header.X5tS256
		if thumb == "" {
			thumb = j.header.X5t
		}
		if b, err := base64.StdEncoding.DecodeString(thumb); err == nil {
			thumb = strings.ToUpper(hex.EncodeToString(b))
		}
		return fail(700027, fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]", thumb, a.ClientID))
	}
	pub, ok := a.cert.PublicKey.(*rsa.PublicKey)
	if !ok || j.verify(pub) != nil {
		return fail(700027, "Client assertion failed signature validation.")
	}
	var c struct {
		Aud audience    `json:"aud"`
		Iss string      `json:"iss"`
		Sub string      `json:"sub"`
		Exp numericDate `json:"exp"`
		Nbf numericDate `json:"nbf"`
	}
	if err := json.Unmarshal(j.claims, &c); err != nil {
		return fail(50027, "JWT token is invalid or malformed.")
	}
	if !strings.EqualFold(c.Iss, a.ClientID) || !strings.EqualFold(c.Sub, a.ClientID) {
		return fail(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .")
	}
	if !slices.ContainsFunc(c.Aud, func(aud string) bool { return s.isTokenEndpoint(x, aud) }) {
		return fail(50027, fmt.Sprintf("JWT token is invalid or malformed: the client assertion's audience does not name the token endpoint '%s%s'.", x.baseURL(), x.r.URL.Path))
	}
	now := s.now()
	exp, nbf := time.Unix(int64(c.Exp), 0), time.Unix(int64(c.Nbf), 0)
	if c.Exp == 0 || now.After(exp.Add(clockSkew)) || (c.Nbf != 0 && now.Before(nbf.Add(-clockSkew))) {
		return fail(700024, fmt.Sprintf("Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
			now.UTC().Format("2006-01-02T15:04:05.0000000Z"), nbf.UTC().Format("2006-01-02T15:04:05.0000000Z"), exp.UTC().Format("2006-01-02T15:04:05.0000000Z")))
	}
	return true
}

// isTokenEndpoint reports whether aud names a token endpoint of this
// tenant: either version, by tenant GUID or domain, on the host the client
// called or on a real login host.
func (s *Server) isTokenEndpoint(x *exchange, aud string) bool {
	u, err := url.Parse(aud)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" {
		return false
	}
	hostOK := strings.EqualFold(u.Host, x.r.Host) || slices.Contains([]string{"login.microsoftonline.com", "login.microsoftonline.us", "login.windows.net", "sts.windows.net"}, strings.ToLower(u.Host))
	if !hostOK {
		return false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 {
		return false
	}
	if code, _ := s.tenantCheck(parts[0]); code != 0 {
		return false
	}
	rest := strings.ToLower(strings.Join(parts[1:], "/"))
	return rest == "oauth2/v2.0/token" || rest == "oauth2/token" || rest == "v2.0" || rest == ""
}

func randomOpaque(n int) string {
	b := make([]byte, (n*3+3)/4)
	rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	return s[:min(n, len(s))]
}
