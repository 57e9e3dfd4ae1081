package emulator

import (
	"cmp"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
	"github.com/mdebridge/mdebridge/ratelimit"
)

// The MDE alert endpoints (mde-api.md §5.4) and machine alerts (§5.1).

var (
	alertRead  = []string{"Alert.Read.All", "Alert.ReadWrite.All"}
	alertWrite = []string{"Alert.ReadWrite.All"}
)

// maxAlertPage is the largest page of alerts, with or without $top.
const maxAlertPage = 10000

func (s *Server) addAlertRoutes() {
	add := func(method, template string, roles []string, limit limitSpec, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceMDE, roles: roles, limit: limit, handle: h})
	}
	add("GET", "/api/alerts", alertRead, defaultLimit, s.listAlerts)
	add("GET", "/api/alerts/{id}", alertRead, defaultLimit, s.getAlert)
	add("PATCH", "/api/alerts/{id}", alertWrite, defaultLimit, s.patchAlert)
	add("POST", "/api/alerts/batchUpdate", alertWrite,
		limitSpec{windows: []ratelimit.Window{perMinute(10), perHour(500)}, code: "TooManyRequests"}, s.batchUpdateAlerts)
	add("POST", "/api/alerts/CreateAlertByReference", alertWrite,
		limitSpec{windows: []ratelimit.Window{perMinute(15)}, code: "TooManyRequests"}, s.createAlertByReference)
	add("GET", "/api/alerts/{id}/domains", []string{"URL.Read.All"}, defaultLimit, s.alertDomains)
	add("GET", "/api/alerts/{id}/files", []string{"File.Read.All"}, defaultLimit, s.alertFiles)
	add("GET", "/api/alerts/{id}/ips", []string{"Ip.Read.All"}, defaultLimit, s.alertIPs)
	add("GET", "/api/alerts/{id}/machine", machineRead, defaultLimit, s.alertMachine)
	add("GET", "/api/alerts/{id}/user", []string{"User.Read.All"}, defaultLimit, s.alertUser)
	add("GET", "/api/machines/{id}/alerts", alertRead, defaultLimit, s.machineAlerts)
	add("GET", "/api/machines/{id}/alerts/$count", alertRead, defaultLimit, s.machineAlertCount)
}

var alertListOptions = odata.QueryLimits{
	MaxTop:  maxAlertPage,
	Options: []string{"$filter", "$top", "$skip", "$select", "$orderby", "$count", "$expand"},
}

// alertQuery is a parsed alert list request.
type alertQuery struct {
	odata.Query
	keep     func(*alert) bool
	sorter   func([]*alert)
	selected []string
	evidence bool // $expand=evidence
}

// parseAlertQuery reads the OData options of an alert list; it answers 400
// ODataError itself and then returns false.
func (x *exchange) parseAlertQuery() (alertQuery, bool) {
	var q alertQuery
	var err error
	if q.Query, err = odata.ParseQuery(x.r.URL.RawQuery, alertListOptions); err != nil {
		x.odataError(err)
		return q, false
	}
	for _, e := range q.Expand {
		if !strings.EqualFold(e, "evidence") {
			x.odataError(fmt.Errorf("Could not find a property named '%s' on type 'microsoft.windowsDefenderATP.api.PublicAlertV2Dto'.", e))
			return q, false
		}
		q.evidence = true
	}
	if q.Filter != nil {
		if q.keep, err = alertSchema.Compile(q.Filter); err != nil {
			x.odataError(err)
			return q, false
		}
	}
	if q.Select != nil {
		if q.selected, err = alertSchema.ResolveSelect(q.Select); err != nil {
			x.odataError(err)
			return q, false
		}
	}
	if q.OrderBy != nil {
		if q.sorter, err = alertSchema.Sorter(q.OrderBy); err != nil {
			x.odataError(err)
			return q, false
		}
	}
	return q, true
}

func (s *Server) listAlerts(x *exchange) {
	q, ok := x.parseAlertQuery()
	if !ok {
		return
	}
	x.writeAlertPage(q, s.tenant.selectAlerts(s.now(), q.keep))
}

// writeAlertPage answers with one page of alerts as the list does: $top
// gives at most $top rows and no nextLink; without it pages of 10,000 are
// chained by a nextLink with $skip.
func (x *exchange) writeAlertPage(q alertQuery, as []*alert) {
	if q.sorter != nil {
		q.sorter(as)
	}
	total := len(as)
	page := as[min(q.Skip, total):]
	next := -1
	if q.HasTop {
		page = page[:min(q.Top, len(page))]
	} else if len(page) > maxAlertPage {
		page = page[:maxAlertPage]
		next = q.Skip + maxAlertPage
	}
	context := x.baseURL() + "/api/$metadata#Alerts"
	if q.selected != nil {
		context += "(" + strings.Join(q.selected, ",") + ")"
	}
	per := 1200
	if q.evidence {
		per = 6000
	}
	b := make([]byte, 0, 256+len(page)*per)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, context)
	if q.Count {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, `,"value":[`...)
	for i, a := range page {
		if i > 0 {
			b = append(b, ',')
		}
		if q.selected != nil {
			b = appendAlertSelected(b, a, q.selected, q.evidence)
		} else {
			b = appendAlert(b, a, q.evidence, nil)
		}
	}
	b = append(b, ']')
	if next >= 0 {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+x.r.URL.EscapedPath()+"?"+withSkip(x.r.URL.RawQuery, next))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// writeAlertCollection answers with alerts as a #Alerts collection, with
// their evidence as the entity routes (machine, file, IP, domain and user
// alerts) serve them.
func (x *exchange) writeAlertCollection(as []*alert) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#Alerts")
	b = append(b, `,"value":[`...)
	for i, a := range as {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAlert(b, a, true, nil)
	}
	b = append(b, "]}"...)
	x.odata(http.StatusOK, b)
}

// writeAlert answers with one alert, evidence included, as #Alerts/$entity.
func (x *exchange) writeAlert(a *alert) {
	prefix := appendString([]byte(`"@odata.context":`), x.baseURL()+"/api/$metadata#Alerts/$entity")
	x.odata(http.StatusOK, appendAlert(nil, a, true, prefix))
}

func (x *exchange) alertNotFound(id string) {
	x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Alert %s was not found", id))
}

// alertParam finds the alert named by the {id} path parameter, answering
// 404 itself when there is none.
func (x *exchange) alertParam() (*alert, bool) {
	id := x.param("id")
	a := x.s.tenant.findAlert(id, x.s.now())
	if a == nil {
		x.alertNotFound(id)
		return nil, false
	}
	return a, true
}

func (s *Server) getAlert(x *exchange) {
	if a, ok := x.alertParam(); ok {
		x.writeAlert(a)
	}
}

// Values the update endpoints accept (mde-api.md §4.2, §5.4). Determination
// names differ between the docs' alert and update pages; both are taken.
var (
	classifications      = []string{"TruePositive", "InformationalExpectedActivity", "FalsePositive"}
	determinationsByClas = map[string][]string{
		"TruePositive":                  {"MultiStagedAttack", "MaliciousUserActivity", "CompromisedUser", "Malware", "Phishing", "UnwantedSoftware", "Other", "NotAvailable"},
		"InformationalExpectedActivity": {"SecurityTesting", "LineOfBusinessApplication", "ConfirmedUserActivity", "ConfirmedActivity", "Other", "NotAvailable"},
		"FalsePositive":                 {"Clean", "NotMalicious", "InsufficientData", "Other", "NotAvailable"},
	}
	alertUpdateKeys = []string{"status", "assignedTo", "classification", "determination", "comment"}
)

// alertUpdate is the body of PATCH /api/alerts/{id} and of batchUpdate.
type alertUpdate struct {
	status, assignedTo, classification, determination, comment *string
}

// readAlertUpdate reads and validates the update fields of body; it answers
// 400 itself and then returns false. Body parameters are case-sensitive.
func (x *exchange) readAlertUpdate(body map[string]json.RawMessage) (alertUpdate, bool) {
	var u alertUpdate
	fields := map[string]**string{"status": &u.status, "assignedTo": &u.assignedTo, "classification": &u.classification,
		"determination": &u.determination, "comment": &u.comment}
	for _, k := range alertUpdateKeys {
		raw, ok := body[k]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
			return u, false
		}
		*fields[k] = &v
	}
	if u == (alertUpdate{}) {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return u, false
	}
	if u.status != nil && !slices.Contains(alertStatuses, *u.status) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input status: "+*u.status)
		return u, false
	}
	if u.classification != nil && !slices.Contains(classifications, *u.classification) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input classification: "+*u.classification)
		return u, false
	}
	if u.determination != nil && !slices.ContainsFunc(classifications, func(c string) bool {
		return slices.Contains(determinationsByClas[c], *u.determination)
	}) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input determination: "+*u.determination)
		return u, false
	}
	return u, true
}

// apply changes a (a copy) as the update says. A determination must belong
// to the alert's classification, given in the same update or earlier.
func (u alertUpdate) apply(a *alert, by string, now time.Time) error {
	if u.status != nil {
		setStatus(a, *u.status, now)
	}
	if u.assignedTo != nil {
		a.AssignedTo = some(*u.assignedTo)
	}
	if u.classification != nil {
		a.Classification = some(*u.classification)
	}
	if u.determination != nil {
		if !a.Classification.OK || !slices.Contains(determinationsByClas[a.Classification.V], *u.determination) {
			return fmt.Errorf("Invalid input determination: %s is not a determination of classification %s", *u.determination, cmp.Or(a.Classification.V, "(none)"))
		}
		a.Determination = some(*u.determination)
	}
	if u.comment != nil {
		a.Comments = append(a.Comments, alertComment{Comment: *u.comment, CreatedBy: by, CreatedTime: now.Truncate(100 * time.Nanosecond)})
	}
	return nil
}

// caller names who made a change: the app's display name, as comments by
// automation show it.
func (x *exchange) caller() string {
	if x.token == nil {
		return "API"
	}
	return cmp.Or(x.token.AppDisplayName, x.token.AppID)
}

// patchAlert is PATCH /api/alerts/{id} with {"status", "assignedTo",
// "classification", "determination", "comment"}; it answers the updated
// alert.
func (s *Server) patchAlert(x *exchange) {
	body, ok := x.readBody(alertUpdateKeys...)
	if !ok {
		return
	}
	u, ok := x.readAlertUpdate(body)
	if !ok {
		return
	}
	id := x.param("id")
	now := s.now()
	as, err := s.tenant.updateAlerts([]string{id}, now, func(a *alert) error { return u.apply(a, x.caller(), now) })
	switch {
	case err == errAlertNotFound:
		x.alertNotFound(id)
	case err != nil:
		x.mdeError(http.StatusBadRequest, "InvalidInput", err.Error())
	default:
		x.writeAlert(as[0])
	}
}

// batchUpdateAlerts is POST /api/alerts/batchUpdate with {"alertIds":[…]}
// and the update fields; it answers 200 with an empty body. The batch is
// applied whole or not at all: an unknown id is 404 naming it (the docs do
// not say; refusing beats silently skipping a client's typo).
func (s *Server) batchUpdateAlerts(x *exchange) {
	body, ok := x.readBody(append([]string{"alertIds"}, alertUpdateKeys...)...)
	if !ok {
		return
	}
	var ids []string
	if raw, ok := body["alertIds"]; !ok || json.Unmarshal(raw, &ids) != nil || len(ids) == 0 || slices.Contains(ids, "") {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter alertIds is missing.")
		return
	}
	delete(body, "alertIds")
	u, ok := x.readAlertUpdate(body)
	if !ok {
		return
	}
	now := s.now()
	for _, id := range ids {
		if s.tenant.findAlert(id, now) == nil {
			x.alertNotFound(id)
			return
		}
	}
	_, err := s.tenant.updateAlerts(ids, now, func(a *alert) error { return u.apply(a, x.caller(), now) })
	switch {
	case err == errAlertNotFound:
		x.mdeError(http.StatusNotFound, "ResourceNotFound", "An alert of the batch was not found")
	case err != nil:
		x.mdeError(http.StatusBadRequest, "InvalidInput", err.Error())
	default:
		x.empty(http.StatusOK)
	}
}

// referenceCategories are the categories CreateAlertByReference accepts.
var referenceCategories = []string{"General", "CommandAndControl", "Collection", "CredentialAccess", "DefenseEvasion", "Discovery",
	"Exfiltration", "Exploit", "Execution", "InitialAccess", "LateralMovement", "Malware", "Persistence", "PrivilegeEscalation",
	"Ransomware", "SuspiciousActivity"}

var referenceKeys = []string{"machineId", "severity", "title", "description", "recommendedAction", "eventTime", "reportId", "category"}

// createAlertByReference is POST /api/alerts/CreateAlertByReference: an
// alert about an event of a device. A second call for the same title on
// the same device, while the first alert is open, returns that alert
// updated instead of a new one.
func (s *Server) createAlertByReference(x *exchange) {
	body, ok := x.readBody(referenceKeys...)
	if !ok {
		return
	}
	v := map[string]string{}
	for _, k := range referenceKeys {
		if v[k], ok = x.bodyString(body, k); !ok {
			return
		}
	}
	if !slices.Contains([]string{"Low", "Medium", "High"}, v["severity"]) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input severity: "+v["severity"])
		return
	}
	if !slices.Contains(referenceCategories, v["category"]) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input category: "+v["category"])
		return
	}
	eventTime, err := odata.ParseDateTime(v["eventTime"])
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input eventTime: "+v["eventTime"])
		return
	}
	m := s.tenant.findMachine(v["machineId"])
	if m == nil {
		x.machineNotFound(v["machineId"])
		return
	}
	a, err := s.tenant.createByReference(m, referenceAlert{
		severity: v["severity"], title: v["title"], description: v["description"], category: v["category"],
		reportID: v["reportId"], eventTime: eventTime,
	}, s.now())
	if err != nil {
		x.mdeError(http.StatusInternalServerError, "InternalServerError", "")
		return
	}
	x.writeAlert(a)
}

// referenceAlert is what CreateAlertByReference was told.
type referenceAlert struct {
	severity, title, description, category, reportID string
	eventTime                                        time.Time
}

// createByReference makes, or merges into, the alert of a reference call.
func (t *Tenant) createByReference(m *machine, r referenceAlert, now time.Time) (*alert, error) {
	s := &t.alerts
	g := t.newAlertGen(t.alertRNG(seedFromString(r.reportID + r.title)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.list {
		if old.byReference && old.Status != "Resolved" && strings.EqualFold(old.MachineID, m.ID) && old.Title == r.title {
			a := old.clone()
			if r.eventTime.After(a.LastEventTime) {
				a.LastEventTime = r.eventTime.UTC()
			}
			a.LastUpdateTime = s.stampLocked(now)
			s.list[i] = a
			return a, nil
		}
	}
	a := g.newAlert(newAlertOptions{created: now, machine: m, template: &alertTemplate{
		source: "CustomerTI", category: r.category, title: r.title, description: r.description,
		severity: []weighted[string]{{r.severity, 1}}, detector: guidFromBytes(digest(sha1.New(), "detector:"+r.title)),
		evidence: func(*alertGen, *alertCtx) {},
	}})
	a.byReference = true
	a.FirstEventTime, a.LastEventTime = r.eventTime.UTC(), r.eventTime.UTC()
	a.InvestigationID, a.InvestigationState = opt[int64]{}, some("UnsupportedAlertType")
	a.LastUpdateTime = s.stampLocked(now)
	for s.has(a.ID) {
		a.ID = g.alertID("da", now)
	}
	t.appendAlertLocked(a)
	return a, nil
}

func (s *Server) machineAlerts(x *exchange) {
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	q, ok := x.parseAlertQuery()
	if !ok {
		return
	}
	q.evidence = true // the live capture of machine alerts carries evidence
	x.writeAlertPage(q, s.tenant.selectAlerts(s.now(), func(a *alert) bool {
		return strings.EqualFold(a.MachineID, m.ID) && (q.keep == nil || q.keep(a))
	}))
}

// machineAlertCount is GET /api/machines/{id}/alerts/$count[?$filter=…]:
// the bare number.
func (s *Server) machineAlertCount(x *exchange) {
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	q, err := odata.ParseQuery(x.r.URL.RawQuery, odata.QueryLimits{Options: []string{"$filter"}})
	if err != nil {
		x.odataError(err)
		return
	}
	var keep func(*alert) bool
	if q.Filter != nil {
		if keep, err = alertSchema.Compile(q.Filter); err != nil {
			x.odataError(err)
			return
		}
	}
	n := len(s.tenant.selectAlerts(s.now(), func(a *alert) bool {
		return strings.EqualFold(a.MachineID, m.ID) && (keep == nil || keep(a))
	}))
	x.w.Header().Set("OData-Version", "4.0")
	x.send(http.StatusOK, "text/plain; charset=utf-8", strconv.AppendInt(nil, int64(n), 10))
}

// writeCollection answers with items as an OData collection; context is
// the path of its @odata.context (the docs show the domains and IPs of an
// alert under "/$metadata#…", outside /api).
func (x *exchange) writeCollection(context string, items [][]byte) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+context)
	b = append(b, `,"value":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, "]}"...)
	x.odata(http.StatusOK, b)
}

func (s *Server) alertDomains(x *exchange) {
	a, ok := x.alertParam()
	if !ok {
		return
	}
	var items [][]byte
	for _, d := range a.alertDomains() {
		items = append(items, append(appendString([]byte(`{"host":`), d), '}'))
	}
	x.writeCollection("/$metadata#Domains", items)
}

func (s *Server) alertIPs(x *exchange) {
	a, ok := x.alertParam()
	if !ok {
		return
	}
	var items [][]byte
	for _, ip := range a.alertIPs() {
		items = append(items, append(appendString([]byte(`{"id":`), ip), '}'))
	}
	x.writeCollection("/$metadata#Ips", items)
}

func (s *Server) alertFiles(x *exchange) {
	a, ok := x.alertParam()
	if !ok {
		return
	}
	var items [][]byte
	for _, e := range a.alertFiles() {
		items = append(items, appendFileProfile(nil, evidenceFileOf(e, a), nil))
	}
	x.writeCollection("/api/$metadata#Files", items)
}

func (s *Server) alertMachine(x *exchange) {
	a, ok := x.alertParam()
	if !ok {
		return
	}
	m := s.tenant.findMachine(a.MachineID)
	if m == nil {
		x.machineNotFound(a.MachineID)
		return
	}
	x.writeMachine(m)
}

// alertUser is GET /api/alerts/{id}/user: the alert's related user as a
// User entity, or 404 as the live service answers when there is none.
func (s *Server) alertUser(x *exchange) {
	a, ok := x.alertParam()
	if !ok {
		return
	}
	if a.RelatedUser == nil {
		x.mdeError(http.StatusNotFound, "ResourceNotFound", "There is no User related to alert "+a.ID)
		return
	}
	u := a.RelatedUser
	sid := opt[string]{}
	for _, e := range a.Evidence {
		if eqFold(e.AccountName, u.Name) && e.UserSID.OK {
			sid = e.UserSID
			break
		}
	}
	seen := a.AlertCreationTime
	b := appendString([]byte(`{"@odata.context":`), x.baseURL()+"/api/$metadata#Users/$entity")
	b = append(b, `,"id":`...)
	b = appendString(b, strings.ToLower(u.Domain)+`\`+u.Name)
	b = append(b, `,"accountName":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"accountDomain":`...)
	b = appendString(b, strings.ToLower(u.Domain))
	b = append(b, `,"accountSid":`...)
	b = appendOptString(b, sid)
	b = append(b, `,"firstSeen":`...)
	b = appendTime(b, seen.Add(-time.Duration(seedFromString(u.Name)%(90*24))*time.Hour).Truncate(time.Second))
	b = append(b, `,"lastSeen":`...)
	b = appendTime(b, seen.Truncate(time.Second))
	b = append(b, `,"mostPrevalentMachineId":`...)
	b = appendString(b, a.MachineID)
	b = append(b, `,"leastPrevalentMachineId":`...)
	b = appendString(b, a.MachineID)
	b = append(b, `,"logonTypes":"Interactive","logOnMachinesCount":1,"isDomainAdmin":false,"isOnlyNetworkUser":false}`...)
	x.odata(http.StatusOK, b)
}
