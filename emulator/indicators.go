package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// Custom indicators (mde-api.md §4.4, §5.5). POST is an upsert keyed by type
// and value; an app with Ti.ReadWrite sees and manages only the indicators
// it created, one with Ti.ReadWrite.All every indicator.

const (
	maxIndicatorBatch   = 500
	maxActiveIndicators = 15000
	tiAll               = "Ti.ReadWrite.All"
)

var tiRoles = []string{"Ti.ReadWrite", tiAll}

// indicator is one custom indicator.
type indicator struct {
	ID                   int64
	Value                string
	Type                 string
	Action               string
	Severity             string
	Application          opt[string]
	EducateURL           opt[string]
	Title                string
	Description          string
	RecommendedActions   opt[string]
	Created              time.Time
	Expiration           time.Time // zero: null
	LastUpdate           time.Time
	LastUpdatedBy        opt[string]
	RBACGroupNames       []string
	RBACGroupIDs         []int64
	GenerateAlert        bool
	CreatedBy            string
	CreatedByDisplayName string
	CreatedBySource      string
	OwnerApp             string // the app id that created it; "" for the portal
}

func indicatorKey(typ, value string) string {
	if typ != "Url" {
		value = strings.ToLower(value)
	}
	return typ + "\x00" + value
}

// indicatorJSON is an Indicator in the live key order (observed/get_indicators.json).
type indicatorJSON struct {
	ID                      string    `json:"id"`
	IndicatorValue          string    `json:"indicatorValue"`
	IndicatorType           string    `json:"indicatorType"`
	Action                  string    `json:"action"`
	CreatedBy               string    `json:"createdBy"`
	Severity                string    `json:"severity"`
	Category                int       `json:"category"`
	Application             *string   `json:"application"`
	EducateURL              *string   `json:"educateUrl"`
	BypassDurationHours     *int      `json:"bypassDurationHours"`
	Title                   string    `json:"title"`
	Description             string    `json:"description"`
	RecommendedActions      *string   `json:"recommendedActions"`
	CreationTimeDateTimeUtc wireTime  `json:"creationTimeDateTimeUtc"`
	ExpirationTime          wireTime  `json:"expirationTime"`
	LastUpdateTime          wireTime  `json:"lastUpdateTime"`
	LastUpdatedBy           *string   `json:"lastUpdatedBy"`
	RBACGroupNames          []string  `json:"rbacGroupNames"`
	RBACGroupIDs            []int64   `json:"rbacGroupIds"`
	NotificationID          *string   `json:"notificationId"`
	NotificationBody        *string   `json:"notificationBody"`
	Version                 *string   `json:"version"`
	MitreTechniques         []string  `json:"mitreTechniques"`
	HistoricalDetection     bool      `json:"historicalDetection"`
	LookBackPeriod          *string   `json:"lookBackPeriod"`
	GenerateAlert           bool      `json:"generateAlert"`
	AdditionalInfo          *string   `json:"additionalInfo"`
	CreatedByDisplayName    string    `json:"createdByDisplayName"`
	ExternalID              *string   `json:"externalId"`
	CreatedBySource         string    `json:"createdBySource"`
	CertificateInfo         *struct{} `json:"certificateInfo"`
}

func (in *indicator) wire() any {
	category := 1
	if in.Type == "IpAddress" || in.Type == "DomainName" || in.Type == "Url" {
		category = 2
	}
	return indicatorJSON{
		ID: strconv.FormatInt(in.ID, 10), IndicatorValue: in.Value, IndicatorType: in.Type, Action: in.Action,
		CreatedBy: in.CreatedBy, Severity: in.Severity, Category: category, Application: optPtr(in.Application),
		EducateURL: optPtr(in.EducateURL), Title: in.Title, Description: in.Description,
		RecommendedActions: optPtr(in.RecommendedActions), CreationTimeDateTimeUtc: wireTime(in.Created),
		ExpirationTime: wireTime(in.Expiration), LastUpdateTime: wireTime(in.LastUpdate), LastUpdatedBy: optPtr(in.LastUpdatedBy),
		RBACGroupNames: append([]string{}, in.RBACGroupNames...), RBACGroupIDs: append([]int64{}, in.RBACGroupIDs...),
		MitreTechniques: []string{}, GenerateAlert: in.GenerateAlert, CreatedByDisplayName: in.CreatedByDisplayName,
		CreatedBySource: in.CreatedBySource,
	}
}

var indicatorSchema = func() *odata.Schema[*indicator] {
	str := func(name string, get func(*indicator) string) odata.Property[*indicator] {
		return odata.Property[*indicator]{Name: name, Type: odata.String, Filterable: true, Sortable: true,
			Get: func(in *indicator) odata.Value { return odata.Value{Str: get(in)} }}
	}
	tm := func(name string, get func(*indicator) time.Time) odata.Property[*indicator] {
		return odata.Property[*indicator]{Name: name, Type: odata.DateTime, Filterable: true, Sortable: true,
			Get: func(in *indicator) odata.Value { return timeValue(get(in)) }}
	}
	return odata.NewSchema(odata.SchemaOptions{TypeName: "microsoft.windowsDefenderATP.api.Indicator", Functions: []string{"contains", "startswith"}},
		str("id", func(in *indicator) string { return strconv.FormatInt(in.ID, 10) }),
		str("indicatorValue", func(in *indicator) string { return in.Value }),
		str("indicatorType", func(in *indicator) string { return in.Type }),
		str("action", func(in *indicator) string { return in.Action }),
		str("severity", func(in *indicator) string { return in.Severity }),
		str("title", func(in *indicator) string { return in.Title }),
		str("application", func(in *indicator) string { return in.Application.V }),
		str("createdBy", func(in *indicator) string { return in.CreatedBy }),
		str("createdByDisplayName", func(in *indicator) string { return in.CreatedByDisplayName }),
		tm("expirationTime", func(in *indicator) time.Time { return in.Expiration }),
		tm("creationTimeDateTimeUtc", func(in *indicator) time.Time { return in.Created }),
		tm("lastUpdateTime", func(in *indicator) time.Time { return in.LastUpdate }),
		odata.Property[*indicator]{Name: "generateAlert", Type: odata.Bool, Filterable: true, Get: func(in *indicator) odata.Value { return odata.Value{Bool: in.GenerateAlert} }},
		odata.Property[*indicator]{Name: "rbacGroupNames", Type: odata.StringCollection, Filterable: true, Get: func(in *indicator) odata.Value { return odata.Value{List: in.RBACGroupNames} }},
	)
}()

func (s *Server) addIndicatorRoutes() {
	add := func(method, template string, windows []ratelimit.Window, h func(*exchange)) {
		lim := defaultLimit
		if windows != nil {
			lim = limitSpec{windows: windows, code: defaultLimit.code}
		}
		s.routes.add(&route{method: method, template: template, surface: surfaceMDE, roles: tiRoles, limit: lim, handle: h})
	}
	add("GET", "/api/indicators", nil, s.listIndicators)
	add("POST", "/api/indicators", nil, s.postIndicator)
	add("POST", "/api/indicators/import", []ratelimit.Window{perMinute(30)}, s.importIndicators)
	add("DELETE", "/api/indicators/{id}", nil, s.deleteIndicator)
	add("POST", "/api/indicators/BatchDelete", []ratelimit.Window{perMinute(30), perHour(1500)}, s.batchDeleteIndicators)
}

// mayManage reports whether the caller may see and change in.
func (x *exchange) mayManage(in *indicator) bool {
	return x.hasRole(tiAll) || (in.OwnerApp != "" && strings.EqualFold(in.OwnerApp, x.requestor()))
}

func (s *Server) listIndicators(x *exchange) {
	r := s.tenant.response()
	r.mu.Lock()
	var list []*indicator
	for _, in := range r.indicators {
		if x.mayManage(in) {
			list = append(list, in)
		}
	}
	r.mu.Unlock()
	c := collection[*indicator]{set: "Indicators", schema: indicatorSchema, maxTop: 10000, wire: (*indicator).wire}
	c.serve(x, list)
}

// indicatorError is a problem with one submitted indicator: the code and
// message the service answers with.
type indicatorError struct{ code, msg string }

func (e *indicatorError) Error() string { return e.msg }

func badIndicator(code, format string, args ...any) *indicatorError {
	return &indicatorError{code: code, msg: fmt.Sprintf(format, args...)}
}

var (
	indicatorTypes   = []string{"FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint", "IpAddress", "DomainName", "Url"}
	indicatorActions = []string{"Warn", "Block", "Audit", "Alert", "AlertAndBlock", "BlockAndRemediate", "Allowed"}
	severities       = []string{"Informational", "Low", "Medium", "High"}
)

var indicatorFields = []string{"indicatorValue", "indicatorType", "action", "application", "title", "description",
	"expirationTime", "severity", "recommendedActions", "rbacGroupNames", "educateUrl", "generateAlert"}

// parseIndicator checks one indicator object as POST /api/indicators and
// each item of an import read it (camelCase, case-sensitive keys).
func (s *Server) parseIndicator(raw json.RawMessage, now time.Time) (*indicator, *indicatorError) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		return nil, badIndicator("InvalidRequestBody", "Request body is incorrect")
	}
	for k := range body {
		if !slices.Contains(indicatorFields, k) {
			return nil, badIndicator("InvalidRequestBody", "Request body is incorrect")
		}
	}
	str := func(name string, required bool) (string, *indicatorError) {
		v, ok := body[name]
		if !ok || string(v) == "null" {
			if required {
				return "", badIndicator("MissingRequiredParameter", "Parameter %s is missing.", name)
			}
			return "", nil
		}
		var out string
		if json.Unmarshal(v, &out) != nil {
			return "", badIndicator("InvalidRequestBody", "Request body is incorrect")
		}
		if required && strings.TrimSpace(out) == "" {
			return "", badIndicator("MissingRequiredParameter", "Parameter %s is missing.", name)
		}
		return out, nil
	}
	in := &indicator{}
	var err *indicatorError
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"indicatorValue", &in.Value, true}, {"indicatorType", &in.Type, true}, {"action", &in.Action, true},
		{"title", &in.Title, true}, {"description", &in.Description, true}, {"severity", &in.Severity, false},
	} {
		if *f.dst, err = str(f.name, f.required); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *opt[string]
	}{{"application", &in.Application}, {"recommendedActions", &in.RecommendedActions}, {"educateUrl", &in.EducateURL}} {
		v, err := str(f.name, false)
		if err != nil {
			return nil, err
		}
		if _, given := body[f.name]; given && string(body[f.name]) != "null" {
			*f.dst = some(v)
		}
	}
	if raw, ok := body["generateAlert"]; ok && json.Unmarshal(raw, &in.GenerateAlert) != nil {
		return nil, badIndicator("InvalidRequestBody", "Request body is incorrect")
	}
	if raw, ok := body["rbacGroupNames"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &in.RBACGroupNames) != nil {
			// The docs' table calls it a comma-separated string.
			var csv string
			if json.Unmarshal(raw, &csv) != nil {
				return nil, badIndicator("InvalidRequestBody", "Request body is incorrect")
			}
			for g := range strings.SplitSeq(csv, ",") {
				if g = strings.TrimSpace(g); g != "" {
					in.RBACGroupNames = append(in.RBACGroupNames, g)
				}
			}
		}
	}
	if exp, err := str("expirationTime", false); err != nil {
		return nil, err
	} else if exp != "" {
		t, perr := odata.ParseDateTime(exp)
		if perr != nil {
			return nil, badIndicator("InvalidInput", "Invalid input expirationTime %s", exp)
		}
		if !t.After(now) {
			return nil, badIndicator("InvalidInput", "The expiration time %s is in the past.", exp)
		}
		in.Expiration = t.UTC()
	}
	if err := checkIndicatorValue(in); err != nil {
		return nil, err
	}
	if !slices.Contains(indicatorActions, in.Action) {
		return nil, badIndicator("InvalidInput", "Invalid input action %s", in.Action)
	}
	network := in.Type == "IpAddress" || in.Type == "DomainName" || in.Type == "Url"
	if network && in.Action == "BlockAndRemediate" {
		return nil, badIndicator("InvalidInput", "The action %s is not supported for indicators of type %s.", in.Action, in.Type)
	}
	if in.Action == "Audit" && !in.GenerateAlert {
		return nil, badIndicator("InvalidInput", "generateAlert must be true for the Audit action.")
	}
	if in.Severity == "" {
		in.Severity = "Informational"
	} else if !slices.Contains(severities, in.Severity) {
		return nil, badIndicator("InvalidInput", "Invalid input severity %s", in.Severity)
	}
	for _, name := range in.RBACGroupNames {
		i := slices.IndexFunc(s.tenant.profile.groups, func(g rbacGroup) bool { return strings.EqualFold(g.name, name) })
		if i < 0 {
			return nil, badIndicator("InvalidInput", "Device group %s was not found.", name)
		}
		in.RBACGroupIDs = append(in.RBACGroupIDs, s.tenant.profile.groups[i].id)
	}
	return in, nil
}

// checkIndicatorValue validates (and normalises) the value for its type.
func checkIndicatorValue(in *indicator) *indicatorError {
	v := strings.TrimSpace(in.Value)
	hash := func(n int) *indicatorError {
		if !isHex(v, n) {
			return badIndicator("InvalidHashValue", "Hash value %s is invalid.", in.Value)
		}
		in.Value = strings.ToLower(v)
		return nil
	}
	switch in.Type {
	case "FileSha1", "CertificateThumbprint":
		return hash(40)
	case "FileSha256":
		return hash(64)
	case "FileMd5":
		return hash(32)
	case "IpAddress":
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return badIndicator("InvalidIpAddress", "IP address %s is invalid (CIDR notation is not supported).", in.Value)
		}
		if !ip.IsGlobalUnicast() || ip.IsPrivate() {
			return badIndicator("InvalidIpAddress", "IP address %s is invalid: only external IP addresses can be added.", in.Value)
		}
		in.Value = ip.String()
	case "DomainName":
		if !validDomain(strings.TrimSuffix(v, ".")) {
			return badIndicator("InvalidDomainName", "Domain name %s is invalid.", in.Value)
		}
		in.Value = strings.ToLower(strings.TrimSuffix(v, "."))
	case "Url":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validDomain(u.Hostname()) && !isIP(u.Hostname()) {
			return badIndicator("InvalidUrl", "Url %s is invalid.", in.Value)
		}
		in.Value = v
	default:
		return badIndicator("InvalidInput", "Invalid input indicatorType %s", in.Type)
	}
	return nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

var errIndicatorNotYours = errors.New("the indicator belongs to another application")
var errTooManyIndicators = errors.New("too many active indicators")

// upsertIndicator stores in as new, or updates the indicator of the same
// type and value (its application is kept: it applies only on create).
func (s *Server) upsertIndicator(x *exchange, in *indicator, now time.Time) (*indicator, error) {
	r := s.tenant.response()
	r.mu.Lock()
	defer r.mu.Unlock()
	by := x.token.AppDisplayName
	if by == "" {
		by = x.requestor()
	}
	key := indicatorKey(in.Type, in.Value)
	if old := r.indicatorByKey[key]; old != nil {
		if !x.mayManage(old) {
			return nil, errIndicatorNotYours
		}
		in.ID, in.Created, in.Application = old.ID, old.Created, old.Application
		in.CreatedBy, in.CreatedByDisplayName, in.CreatedBySource, in.OwnerApp = old.CreatedBy, old.CreatedByDisplayName, old.CreatedBySource, old.OwnerApp
		in.LastUpdate, in.LastUpdatedBy = now, some(by)
		*old = *in
		return old, nil
	}
	active := 0
	for _, o := range r.indicators {
		if o.Expiration.IsZero() || o.Expiration.After(now) {
			active++
		}
	}
	if active >= maxActiveIndicators {
		return nil, errTooManyIndicators
	}
	in.ID = r.nextIndicatorID
	r.nextIndicatorID++
	in.Created, in.LastUpdate, in.LastUpdatedBy = now, now, some(by)
	in.CreatedBy, in.CreatedByDisplayName, in.CreatedBySource, in.OwnerApp = x.requestor(), by, "PublicApi", x.requestor()
	r.indicators = append(r.indicators, in)
	r.indicatorByKey[key] = in
	return in, nil
}

func (x *exchange) indicatorUpsertError(err error) {
	switch {
	case errors.Is(err, errIndicatorNotYours):
		x.forbidden([]string{tiAll})
	case errors.Is(err, errTooManyIndicators):
		x.mdeError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The limit of %d active indicators per tenant has been reached.", maxActiveIndicators))
	default:
		x.mdeError(http.StatusInternalServerError, "InternalServerError", "")
	}
}

func (s *Server) postIndicator(x *exchange) {
	raw, ok := readRaw(x)
	if !ok {
		return
	}
	now := s.now()
	in, ierr := s.parseIndicator(raw, now)
	if ierr != nil {
		x.mdeError(http.StatusBadRequest, ierr.code, ierr.msg)
		return
	}
	stored, err := s.upsertIndicator(x, in, now)
	if err != nil {
		x.indicatorUpsertError(err)
		return
	}
	r := s.tenant.response()
	r.mu.Lock()
	w := stored.wire()
	r.mu.Unlock()
	x.entity(http.StatusOK, "Indicators/$entity", w)
}

// readRaw reads a JSON request body (at most 8 MB: an import of 500
// indicators with long descriptions fits), answering 400 when it cannot.
func readRaw(x *exchange) (json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, 8<<20))
	if err != nil || !json.Valid(data) {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return nil, false
	}
	return data, true
}

type importResult struct {
	ID            *string `json:"id"`
	Indicator     string  `json:"indicator"`
	IsFailed      bool    `json:"isFailed"`
	FailureReason *string `json:"failureReason"`
}

func (s *Server) importIndicators(x *exchange) {
	raw, ok := readRaw(x)
	if !ok {
		return
	}
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) != nil || body == nil {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return
	}
	var items []json.RawMessage
	if list, ok := body["Indicators"]; !ok || len(body) != 1 || json.Unmarshal(list, &items) != nil {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return
	}
	if len(items) == 0 {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter Indicators is missing.")
		return
	}
	if len(items) > maxIndicatorBatch {
		x.mdeError(http.StatusBadRequest, "MaximumBatchSizeExceeded", fmt.Sprintf("Maximum batch size exceeded. Received: %d, allowed: %d.", len(items), maxIndicatorBatch))
		return
	}
	now := s.now()
	results := make([]importResult, 0, len(items))
	for _, item := range items {
		var value struct {
			V string `json:"indicatorValue"`
		}
		json.Unmarshal(item, &value)
		res := importResult{Indicator: value.V}
		in, ierr := s.parseIndicator(item, now)
		var stored *indicator
		if ierr == nil {
			var err error
			stored, err = s.upsertIndicator(x, in, now)
			if err != nil {
				ierr = &indicatorError{msg: err.Error()}
			}
		}
		if ierr != nil {
			msg := ierr.msg
			res.IsFailed, res.FailureReason = true, &msg
		} else {
			id := strconv.FormatInt(stored.ID, 10)
			res.ID, res.Indicator = &id, stored.Value
		}
		results = append(results, res)
	}
	x.odata(http.StatusOK, marshalWire(struct {
		Value []importResult `json:"value"`
	}{results}))
}

// removeIndicators deletes the indicators with the given ids, all or none:
// an id unknown, or of an indicator the caller may not see, is errNoIndicator.
func (s *Server) removeIndicators(x *exchange, ids []int64) error {
	r := s.tenant.response()
	r.mu.Lock()
	defer r.mu.Unlock()
	del := map[int64]bool{}
	for _, id := range ids {
		i := slices.IndexFunc(r.indicators, func(in *indicator) bool { return in.ID == id })
		if i < 0 || !x.mayManage(r.indicators[i]) {
			return fmt.Errorf("indicator %d: %w", id, errNoIndicator)
		}
		del[id] = true
	}
	r.indicators = slices.DeleteFunc(r.indicators, func(in *indicator) bool {
		if del[in.ID] {
			delete(r.indicatorByKey, indicatorKey(in.Type, in.Value))
			return true
		}
		return false
	})
	return nil
}

var errNoIndicator = errors.New("no such indicator")

func (s *Server) deleteIndicator(x *exchange) {
	id, err := strconv.ParseInt(x.param("id"), 10, 64)
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input id "+x.param("id"))
		return
	}
	if err := s.removeIndicators(x, []int64{id}); err != nil {
		s.answerRemoveError(x, err, x.param("id"))
		return
	}
	// The docs say 204; the live service answers 200 with an empty body
	// (observed/delete_indicator_by_id.json). The capture wins.
	x.empty(http.StatusOK)
}

func (s *Server) answerRemoveError(x *exchange, err error, what string) {
	x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Indicator %s was not found", what))
}

func (s *Server) batchDeleteIndicators(x *exchange) {
	body, ok := x.readBody("IndicatorIds")
	if !ok {
		return
	}
	var ids []string
	if raw, ok := body["IndicatorIds"]; !ok || json.Unmarshal(raw, &ids) != nil || len(ids) == 0 {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter IndicatorIds is missing.")
		return
	}
	if len(ids) > maxIndicatorBatch {
		x.mdeError(http.StatusBadRequest, "MaximumBatchSizeExceeded", fmt.Sprintf("Maximum batch size exceeded. Received: %d, allowed: %d.", len(ids), maxIndicatorBatch))
		return
	}
	var nums []int64
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input id "+id)
			return
		}
		nums = append(nums, n)
	}
	if err := s.removeIndicators(x, nums); err != nil {
		s.answerRemoveError(x, err, strings.Join(ids, ", "))
		return
	}
	x.empty(http.StatusNoContent)
}

// generateIndicators makes a tenant's existing indicators: blocks on the
// catalogue's malware and suspicious domains, made in the portal and by
// another application (so an app with Ti.ReadWrite alone sees none of them).
func (r *responseState) generateIndicators(rng *rand.Rand, anchor time.Time, p *profile) {
	other := randomGUID(rng)
	add := func(typ, value, action, title string, portal bool) {
		in := &indicator{ID: r.nextIndicatorID, Type: typ, Value: value, Action: action, Severity: pick(rng, []weighted[string]{{"High", 3}, {"Medium", 4}, {"Low", 2}, {"Informational", 1}}),
			Title: title, Description: "Added by the SOC after triage", Created: anchor.Add(-time.Duration(1+rng.IntN(60*24)) * time.Hour).Truncate(100 * time.Nanosecond),
			RBACGroupNames: []string{}, RBACGroupIDs: []int64{}}
		in.LastUpdate = in.Created
		if rng.IntN(3) > 0 {
			in.RecommendedActions = some("Isolate the device, collect an investigation package and reimage it.")
		}
		if !portal {
			in.Application = some("TI Feed Connector")
		}
		if rng.IntN(2) == 0 {
			in.Expiration = in.Created.Add(time.Duration(30+rng.IntN(335)) * 24 * time.Hour).Truncate(24 * time.Hour)
		}
		if portal {
			by := "soc-analyst@" + p.tenantDomain
			in.CreatedBy, in.CreatedByDisplayName, in.CreatedBySource, in.LastUpdatedBy = by, by, "Portal", some(by)
		} else {
			in.CreatedBy, in.CreatedByDisplayName, in.CreatedBySource, in.OwnerApp, in.LastUpdatedBy = other, "TI Feed Connector", "PublicApi", other, some("TI Feed Connector")
		}
		r.nextIndicatorID++
		r.indicators = append(r.indicators, in)
		r.indicatorByKey[indicatorKey(in.Type, in.Value)] = in
	}
	for i, f := range r.catalog.files {
		if f.Determination == "Malware" {
			add("FileSha256", f.SHA256, pick(rng, []weighted[string]{{"BlockAndRemediate", 3}, {"AlertAndBlock", 1}}), "Known malware: "+f.Name, i%2 == 0)
		}
	}
	for i, d := range r.catalog.domains {
		if d.share > 0 && d.share < 0.01 {
			add("DomainName", d.Host, "Block", "Suspicious domain "+d.Host, i%2 == 1)
			add("IpAddress", d.IPs[0], "Block", "Infrastructure of "+d.Host, false)
		}
	}
	add("Url", "http://cdn-dl-files.xyz/payload/update.bin", "Block", "Payload download URL", true)
}
