package emulator

import (
	"bytes"
	"cmp"
	"compress/flate"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

// Options configure a Server.
type Options struct {
	Tenant     *Tenant          // required
	Logger     *slog.Logger     // nil: discard
	Now        func() time.Time // nil: time.Now
	RateLimits RateLimits       // zero value = real limits
	// StateDir "" keeps apps and the token-signing key in memory only;
	// otherwise they are kept there (apps.json with secret hashes,
	// signing-key.pem), so a restarted emulator accepts the same credentials
	// and tokens.
	StateDir string
	// ExportFileMachines is how many machines' rows one export file holds
	// (default 4,000: 200,000 vulnerability rows at 50 a machine).
	ExportFileMachines int
}

// Server is the emulated Microsoft cloud as one http.Handler: Entra ID's
// token service under /{tenant}/..., the MDE API under /api/... and the
// emulator's control API under /_emulator/.... Host names do not matter.
type Server struct {
	tenant *Tenant
	log    *slog.Logger
	now    func() time.Time
	signer *tokenSigner
	apps   *appRegistry
	routes router
	faults faultSet

	hunting *hunting // advanced hunting: tables, limits, CPU used

	limitsMu   sync.RWMutex
	rateLimits RateLimits
	limiters   *ratelimit.Group

	statsMu   sync.Mutex
	calls     map[string]int
	throttled int

	activity activityState // control_alerts.go

	gzipPool  sync.Pool
	flatePool sync.Pool

	tvm serverTVM // the TVM and export APIs' state (mde_exports.go)
}

// New returns a Server for opts.Tenant.
func New(opts Options) (*Server, error) {
	if opts.Tenant == nil {
		return nil, errors.New("emulator: Options.Tenant is required")
	}
	if opts.RateLimits.Divisor < 0 {
		return nil, fmt.Errorf("emulator: rate limit divisor %d is negative", opts.RateLimits.Divisor)
	}
	s := &Server{
		tenant:     opts.Tenant,
		log:        opts.Logger,
		now:        opts.Now,
		rateLimits: opts.RateLimits,
		calls:      map[string]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.signer, err = loadOrCreateSigner(opts.StateDir); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if s.apps, err = loadApps(opts.StateDir); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	s.faults.init()
	s.tenant.setClock(s.now)
	s.tenant.setExportFileMachines(opts.ExportFileMachines)
	s.limiters = ratelimit.NewGroup(s.newLimiter)
	s.addEntraRoutes()
	s.addManagedIdentityRoutes()
	s.addMachineRoutes()
	s.addResponseRoutes()
	s.addAlertRoutes()
	s.addLogonUserRoutes()
	s.addHuntingRoutes()
	s.addTVMRoutes()
	s.addExportRoutes()
	s.addControlRoutes()
	s.addAlertControlRoutes()
	return s, nil
}

// TenantID is the emulated tenant's GUID.
func (s *Server) TenantID() string { return s.tenant.ID() }

// Tenant is the emulated tenant.
func (s *Server) Tenant() *Tenant { return s.tenant }

// CreateApp registers an application with the given roles, as
// POST /_emulator/apps does.
func (s *Server) CreateApp(spec AppSpec) (AppCredentials, error) {
	creds, err := s.apps.create(spec, s.tenant.ID(), s.now())
	if err != nil {
		return AppCredentials{}, err
	}
	if spec.Credential == "federated" {
		if creds.FederatedToken, err = s.federatedToken(s.apps.get(creds.ClientID)); err != nil {
			return AppCredentials{}, fmt.Errorf("create app: %w", err)
		}
	}
	s.log.Info("emulator: app created", "clientId", creds.ClientID, "roles", spec.Roles, "credential", cmp.Or(spec.Credential, "secret"))
	return creds, nil
}

// Stats counts the calls the emulator has answered, per route, since the
// start or the last ResetStats. The control API is not counted.
type Stats struct {
	Calls     map[string]int `json:"calls"`
	Throttled int            `json:"throttled"`
}

// Stats returns the counts so far, as GET /_emulator/stats does.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return Stats{Calls: maps.Clone(s.calls), Throttled: s.throttled}
}

// ResetStats sets every count back to zero.
func (s *Server) ResetStats() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	clear(s.calls)
	s.throttled = 0
}

func (s *Server) countCall(key string) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.calls[key]++
}

func (s *Server) countThrottled() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.throttled++
}

// SetRateLimits changes how strictly the emulator throttles from now on and
// forgets the calls counted so far.
func (s *Server) SetRateLimits(r RateLimits) error {
	if r.Divisor < 0 {
		return fmt.Errorf("emulator: rate limit divisor %d is negative", r.Divisor)
	}
	s.limitsMu.Lock()
	s.rateLimits = r
	s.limitsMu.Unlock()
	s.limiters.Reset()
	return nil
}

// RateLimits returns the current throttling mode.
func (s *Server) RateLimits() RateLimits {
	s.limitsMu.RLock()
	defer s.limitsMu.RUnlock()
	return s.rateLimits
}

// ResetRateLimits forgets the calls counted against every quota.
func (s *Server) ResetRateLimits() { s.limiters.Reset() }

// exchange is one request and its response.
type exchange struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	route  *route
	params []string
	target string       // request id, the "target" of error bodies
	fault  *Fault       // body damage to apply to the response
	token  *tokenClaims // MDE: the caller's verified token
	status int
}

// ServeHTTP routes by path alone, so that every Microsoft host name works.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, params, allow := s.routes.match(r.Method, r.URL.Path)
	if rt == nil {
		s.unrouted(w, r, allow)
		return
	}
	x := &exchange{s: s, w: w, r: r, route: rt, params: params, target: requestID()}
	if rt.surface != surfaceControl {
		s.countCall(rt.key)
		if s.applyFault(x) {
			s.logExchange(x, start)
			return
		}
	}
	if rt.surface == surfaceMDE && (!s.authorize(x) || !s.admit(x)) {
		s.logExchange(x, start)
		return
	}
	rt.handle(x)
	s.logExchange(x, start)
}

func (s *Server) logExchange(x *exchange, start time.Time) {
	level := slog.LevelDebug
	if x.status >= 500 {
		level = slog.LevelWarn
	}
	s.log.Log(x.r.Context(), level, "emulator: request", "method", x.r.Method, "path", x.r.URL.Path,
		"route", x.route.key, "status", x.status, "target", x.target, "duration", time.Since(start))
}

// unrouted answers a request no route takes as the live service does (404
// or 405 with an empty body) and logs it loudly: a client calling a path
// that does not exist has a bug that must not pass silently.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Content-Length", "0")
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		w.WriteHeader(http.StatusMethodNotAllowed)
		s.log.Warn("emulator: method not allowed on this route; answering 405", "method", r.Method, "path", r.URL.Path, "host", r.Host, "allow", allow)
		return
	}
	w.WriteHeader(http.StatusNotFound)
	service := "unknown"
	switch first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); strings.ToLower(first) {
	case "api":
		service = "MDE"
	case "subscriptions", "providers":
		service = "ARM (not emulated yet)"
	case "v1.0", "beta":
		service = "Graph (not emulated yet)"
	case "_emulator":
		service = "emulator control API"
	}
	s.log.Error("emulator: no such route; answering 404 with an empty body as the live service does",
		"method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "host", r.Host, "service", service)
}

// requestID returns an opaque id in the shape of the live service's error
// targets, e.g. "|b1838e63-40a6640ddd2719ac.".
func requestID() string {
	var b [12]byte
	rand.Read(b[:])
	return "|" + hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:]) + "."
}

const (
	contentTypeOData = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
	contentTypeJSON  = "application/json; charset=utf-8"
)

// baseURL is the scheme and host the client called, so that links in
// responses lead back to the same place whatever name it used.
func (x *exchange) baseURL() string {
	host := x.r.Host
	if host == "" {
		host = "api.securitycenter.microsoft.com"
	}
	if x.r.TLS == nil {
		return "http://" + host
	}
	return "https://" + host
}

// odata writes a success body of the MDE API.
func (x *exchange) odata(status int, body []byte) {
	x.w.Header().Set("OData-Version", "4.0")
	x.send(status, contentTypeOData, body)
}

// json writes v as JSON with the plain JSON content type.
func (x *exchange) json(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		x.s.log.Error("emulator: encode response", "err", err)
		x.send(http.StatusInternalServerError, "", nil)
		return
	}
	x.send(status, contentTypeJSON, body)
}

// mdeError writes an MDE error body: {"error":{"code","message","target"}}.
func (x *exchange) mdeError(status int, code, message string) {
	var b []byte
	b = append(b, `{"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, `,"target":`...)
	b = appendString(b, x.target)
	b = append(b, "}}"...)
	x.send(status, contentTypeJSON, b)
}

// empty writes a status with no body.
func (x *exchange) empty(status int) { x.send(status, "", nil) }

// send writes the response, compressed when the client accepts it, and
// applies the body damage of an injected fault.
func (x *exchange) send(status int, contentType string, body []byte) {
	x.status = status
	h := x.w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if x.fault != nil && x.fault.MalformedBody && len(body) > 0 {
		body = malform(body)
	}
	if len(body) > 0 {
		h.Set("Vary", "Accept-Encoding")
		if enc := negotiateEncoding(x.r.Header.Get("Accept-Encoding")); enc != "" {
			body = x.s.compress(enc, body)
			h.Set("Content-Encoding", enc)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(status)
	if x.fault != nil && x.fault.TruncateBody && len(body) > 0 {
		// Fewer bytes than Content-Length: the server drops the connection
		// and the client sees an unexpected EOF, as on a cut transfer.
		x.w.Write(body[:len(body)/2])
		return
	}
	x.w.Write(body)
}

// malform cuts a JSON body in the middle and appends something that is not
// JSON, as a proxy error page spliced into a response would.
func malform(body []byte) []byte {
	out := append([]byte{}, body[:len(body)/2]...)
	return append(out, "<html><body>upstream error</body></html>"...)
}

// negotiateEncoding picks the response encoding: deflate when the client
// accepts it (the live service answers "Content-Encoding: deflate" with a
// raw DEFLATE stream), else gzip, else none.
func negotiateEncoding(accept string) string {
	if accept == "" {
		return ""
	}
	ok := map[string]bool{}
	for part := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if k, v, found := strings.Cut(strings.TrimSpace(p), "="); found && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			ok[name] = true
		}
	}
	switch {
	case ok["deflate"]:
		return "deflate"
	case ok["gzip"] || ok["x-gzip"]:
		return "gzip"
	}
	return ""
}

func (s *Server) compress(enc string, body []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body)/5 + 64)
	switch enc {
	case "gzip":
		zw, _ := s.gzipPool.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		} else {
			zw.Reset(&buf)
		}
		zw.Write(body)
		zw.Close()
		s.gzipPool.Put(zw)
	case "deflate":
		fw, _ := s.flatePool.Get().(*flate.Writer)
		if fw == nil {
			fw, _ = flate.NewWriter(&buf, flate.BestSpeed)
		} else {
			fw.Reset(&buf)
		}
		fw.Write(body)
		fw.Close()
		s.flatePool.Put(fw)
	default:
		return body
	}
	return buf.Bytes()
}
