package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

// tokenClaims are the claims of the v1 access tokens Entra issues for the
// WindowsDefenderATP resource, in the order Entra writes them.
type tokenClaims struct {
	Aud            string   `json:"aud"`
	Iss            string   `json:"iss"`
	Iat            int64    `json:"iat"`
	Nbf            int64    `json:"nbf"`
	Exp            int64    `json:"exp"`
	Aio            string   `json:"aio"`
	AppDisplayName string   `json:"app_displayname"`
	AppID          string   `json:"appid"`
	AppIDAcr       string   `json:"appidacr"` // "1" secret, "2" certificate
	Idp            string   `json:"idp"`
	Idtyp          string   `json:"idtyp"`
	Oid            string   `json:"oid"`
	Rh             string   `json:"rh"`
	Roles          []string `json:"roles,omitempty"`
	Sub            string   `json:"sub"`
	Tid            string   `json:"tid"`
	Uti            string   `json:"uti"`
	Ver            string   `json:"ver"`
}

// clockSkew is the leeway Microsoft's token validation allows on exp and nbf.
const clockSkew = 5 * time.Minute

// resourceKind is the API a token is for.
type resourceKind int

const (
	resourceMDE resourceKind = iota + 1
	resourceARM
	resourceGraph
)

// windowsDefenderATPAppID is the WindowsDefenderATP resource application.
const windowsDefenderATPAppID = "fc780465-2017-40d4-a0c5-307022471b92"

// resources are the token audiences the emulated Entra issues tokens for,
// normalised (lower case, no trailing slash).
var resources = map[string]resourceKind{
	"https://api.securitycenter.microsoft.com":                 resourceMDE,
	"https://api.security.microsoft.com":                       resourceMDE,
	"https://securitycenter.onmicrosoft.com/windowsatpservice": resourceMDE,
	"https://api.securitycenter.windows.com":                   resourceMDE,
	"https://api-gcc.securitycenter.microsoft.us":              resourceMDE,
	"https://api-gov.securitycenter.microsoft.us":              resourceMDE,
	windowsDefenderATPAppID:                                    resourceMDE,
	"https://management.azure.com":                             resourceARM,
	"https://management.core.windows.net":                      resourceARM,
	"https://management.usgovcloudapi.net":                     resourceARM,
	"https://management.core.usgovcloudapi.net":                resourceARM,
	"https://graph.microsoft.com":                              resourceGraph,
	"https://graph.microsoft.us":                               resourceGraph,
	"https://dod-graph.microsoft.us":                           resourceGraph,
	"00000003-0000-0000-c000-000000000000":                     resourceGraph,
}

func resourceOf(aud string) resourceKind {
	return resources[strings.TrimSuffix(strings.ToLower(aud), "/")]
}

// verifyToken checks a bearer token as the resource API would: the
// emulator's signature, this tenant, the API's audience and the time.
func (s *Server) verifyToken(tok string, want resourceKind) (*tokenClaims, error) {
	j, err := parseJWT(tok)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if j.header.Alg != "RS256" {
		return nil, fmt.Errorf("token algorithm %q, want RS256", j.header.Alg)
	}
	if j.header.Kid != s.signer.kid {
		return nil, errors.New("token signed by an unknown key")
	}
	if err := j.verify(&s.signer.key.PublicKey); err != nil {
		return nil, errors.New("bad token signature")
	}
	var c tokenClaims
	if err := json.Unmarshal(j.claims, &c); err != nil {
		return nil, fmt.Errorf("malformed token claims: %w", err)
	}
	tid := s.tenant.ID()
	if !strings.EqualFold(c.Tid, tid) || c.Iss != "https://sts.windows.net/"+tid+"/" {
		return nil, fmt.Errorf("token of tenant %s, want %s", c.Tid, tid)
	}
	if resourceOf(c.Aud) != want {
		return nil, fmt.Errorf("token audience %q is not this API", c.Aud)
	}
	now := s.now()
	if now.After(time.Unix(c.Exp, 0).Add(clockSkew)) {
		return nil, fmt.Errorf("token expired at %s", time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if now.Before(time.Unix(c.Nbf, 0).Add(-clockSkew)) {
		return nil, fmt.Errorf("token not valid before %s", time.Unix(c.Nbf, 0).UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// authorize authenticates an MDE call and checks the route's application
// permissions; it answers 401 or 403 itself and then returns false.
func (s *Server) authorize(x *exchange) bool {
	scheme, tok, _ := strings.Cut(x.r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		s.log.Info("emulator: 401, no bearer token", "route", x.route.key)
		x.w.Header().Set("WWW-Authenticate", `Bearer`)
		x.mdeError(http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return false
	}
	claims, err := s.verifyToken(tok, resourceMDE)
	if err != nil {
		s.log.Info("emulator: 401, token refused", "route", x.route.key, "reason", err)
		x.w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		x.mdeError(http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return false
	}
	x.token = claims
	if len(x.route.roles) > 0 && !slices.ContainsFunc(claims.Roles, func(r string) bool { return slices.Contains(x.route.roles, r) }) {
		s.log.Info("emulator: 403, missing application permission", "route", x.route.key, "appid", claims.AppID, "roles", claims.Roles, "need", x.route.roles)
		x.mdeError(http.StatusForbidden, "Forbidden", fmt.Sprintf(
			"The application does not have any of the required application permissions (%s) to access the resource.",
			strings.Join(x.route.roles, ", ")))
		return false
	}
	return true
}

// limiterKey names the quota of one API for one app of one tenant.
func limiterKey(routeKey, tenant, app string) string {
	return routeKey + "\x00" + tenant + "\x00" + strings.ToLower(app)
}

func (s *Server) newLimiter(key string) *ratelimit.Limiter {
	routeKey, _, _ := strings.Cut(key, "\x00")
	spec := defaultLimit
	for _, r := range s.routes.byKey(routeKey) {
		if r.limit.windows != nil {
			spec = r.limit
		}
	}
	return ratelimit.New(s.now, s.RateLimits().windows(spec.windows)...)
}

// admit counts the call against the API's quota for the caller's tenant and
// app, and answers 429 when it is spent.
func (s *Server) admit(x *exchange) bool {
	if s.RateLimits().Off {
		return true
	}
	l := s.limiters.Get(limiterKey(x.route.key, s.tenant.ID(), x.token.AppID))
	ok, wait, full := l.Allow()
	if ok {
		return true
	}
	code := x.route.limit.code
	if code == "" {
		code = defaultLimit.code
	}
	s.countThrottled()
	secs := max(1, int(math.Ceil(wait.Seconds())))
	s.log.Info("emulator: 429, quota spent", "route", x.route.key, "appid", x.token.AppID, "window", full.String(), "retryAfter", secs)
	x.w.Header().Set("Retry-After", strconv.Itoa(secs))
	x.mdeError(http.StatusTooManyRequests, code,
		fmt.Sprintf("API calls quota exceeded! maximum allowed %d per %s", full.Limit, timeSpan(full.Per)))
	return false
}
