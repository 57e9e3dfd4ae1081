package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// The MDE machine endpoints (mde-api.md §5.1).

var (
	machineRead  = []string{"Machine.Read.All", "Machine.ReadWrite.All"}
	machineWrite = []string{"Machine.ReadWrite.All"}
)

// maxMachinePage is the largest page of machines, with or without $top.
const maxMachinePage = 10000

func (s *Server) addMachineRoutes() {
	add := func(method, template string, roles []string, h func(*exchange)) {
		s.routes.add(&route{method: method, template: template, surface: surfaceMDE, roles: roles, limit: defaultLimit, handle: h})
	}
	add("GET", "/api/machines", machineRead, s.listMachines)
	add("GET", "/api/machines/findbytag", machineRead, s.findMachinesByTag)
	add("GET", "/api/machines/findbyip(ip='{ip}',timestamp={timestamp})", machineRead, s.findMachinesByIP)
	add("GET", "/api/machines/find(timestamp={timestamp},key='{ip}')", machineRead, s.findMachinesByIP)
	add("GET", "/api/machines/{id}", machineRead, s.getMachine)
	add("PATCH", "/api/machines/{id}", machineWrite, s.patchMachine)
	add("POST", "/api/machines/{id}/tags", machineWrite, s.tagMachine)
	add("POST", "/api/machines/{id}/setDeviceValue", machineWrite, s.setDeviceValue)
	add("POST", "/api/machines/AddOrRemoveTagForMultipleMachines", machineWrite, s.tagMachines)
}

var machineListOptions = odata.QueryLimits{
	MaxTop:  maxMachinePage,
	Options: []string{"$filter", "$top", "$skip", "$select", "$orderby", "$count"},
}

func (x *exchange) odataError(err error) {
	x.mdeError(http.StatusBadRequest, "ODataError", err.Error())
}

func (s *Server) listMachines(x *exchange) {
	q, err := odata.ParseQuery(x.r.URL.RawQuery, machineListOptions)
	if err != nil {
		x.odataError(err)
		return
	}
	var keep func(*machine) bool
	if q.Filter != nil {
		if keep, err = machineSchema.Compile(q.Filter); err != nil {
			x.odataError(err)
			return
		}
	}
	var selected []string
	if q.Select != nil {
		if selected, err = machineSchema.ResolveSelect(q.Select); err != nil {
			x.odataError(err)
			return
		}
	}
	var sorter func([]*machine)
	if q.OrderBy != nil {
		if sorter, err = machineSchema.Sorter(q.OrderBy); err != nil {
			x.odataError(err)
			return
		}
	}
	if s.tenant.MachineCount() == 0 {
		// "If there are no recent machines, you see 404 Not Found."
		x.mdeError(http.StatusNotFound, "ResourceNotFound", "No recent machines were found")
		return
	}
	ms := s.tenant.selectMachines(keep)
	if sorter != nil {
		sorter(ms)
	}
	total := len(ms)
	page := ms[min(q.Skip, total):]
	next := -1
	if q.HasTop {
		// With $top the service returns at most $top rows and no nextLink
		// (recorded by JupiterOne against a live tenant).
		page = page[:min(q.Top, len(page))]
	} else if len(page) > maxMachinePage {
		page = page[:maxMachinePage]
		next = q.Skip + maxMachinePage
	}

	context := x.baseURL() + "/api/$metadata#Machines"
	if selected != nil {
		context += "(" + strings.Join(selected, ",") + ")"
	}
	b := make([]byte, 0, 256+len(page)*1500)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, context)
	if q.Count {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = appendMachineList(b, page, newFieldMask(selected))
	if next >= 0 {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+x.r.URL.EscapedPath()+"?"+withSkip(x.r.URL.RawQuery, next))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// appendMachineList appends ,"value":[...] for the machines.
func appendMachineList(b []byte, ms []*machine, mask fieldMask) []byte {
	b = append(b, `,"value":[`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMachine(b, m, mask, nil)
	}
	return append(b, ']')
}

// withSkip returns the raw query with $skip set to n and every other
// parameter as the client sent it.
func withSkip(rawQuery string, n int) string {
	var parts []string
	for p := range strings.SplitSeq(rawQuery, "&") {
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && strings.EqualFold(key, "$skip") {
			continue
		}
		parts = append(parts, p)
	}
	return strings.Join(append(parts, "$skip="+strconv.Itoa(n)), "&")
}

// writeMachineCollection answers with machines as a #Machines collection.
func (x *exchange) writeMachineCollection(ms []*machine) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#Machines")
	b = appendMachineList(b, ms, nil)
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// writeMachine answers with one machine as #Machines/$entity.
func (x *exchange) writeMachine(m *machine) {
	prefix := appendString([]byte(`"@odata.context":`), x.baseURL()+"/api/$metadata#Machines/$entity")
	x.odata(http.StatusOK, appendMachine(nil, m, nil, prefix))
}

func (x *exchange) machineNotFound(id string) {
	x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Machine %s was not found", id))
}

func (s *Server) getMachine(x *exchange) {
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	x.writeMachine(m)
}

// findMachinesByTag is GET /api/machines/findbytag?tag=&useStartsWithFilter=.
func (s *Server) findMachinesByTag(x *exchange) {
	var tag, startsWith string
	var haveTag bool
	for k, v := range x.r.URL.Query() {
		switch strings.ToLower(k) {
		case "tag":
			tag, haveTag = v[0], true
		case "usestartswithfilter":
			startsWith = v[0]
		}
	}
	if !haveTag || tag == "" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter tag is missing.")
		return
	}
	prefix := false
	if startsWith != "" {
		b, err := strconv.ParseBool(startsWith)
		if err != nil {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input useStartsWithFilter")
			return
		}
		prefix = b
	}
	ms := s.tenant.selectMachines(func(m *machine) bool {
		return slices.ContainsFunc(m.MachineTags, func(t string) bool {
			if prefix {
				return len(t) >= len(tag) && strings.EqualFold(t[:len(tag)], tag)
			}
			return strings.EqualFold(t, tag)
		})
	})
	x.writeMachineCollection(ms)
}

// parseFuncArgs reads the argument list of a function-style segment:
// ip='10.0.0.1',timestamp=2024-01-01T00:00:00Z. Names are lower-cased.
func parseFuncArgs(s string) map[string]string {
	args := map[string]string{}
	for len(s) > 0 {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, "'") {
			end := strings.Index(rest[1:], "'")
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:end+1], rest[end+2:]
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			val, rest, _ = strings.Cut(rest, ",")
		}
		args[strings.ToLower(strings.TrimSpace(name))] = val
		s = rest
	}
	return args
}

// findMachinesByIP is GET /api/machines/findbyip(ip='{IP}',timestamp={ISO})
// and its older form find(timestamp=,key=): machines that used the internal
// IP within 15 minutes (16 for the old form) of the timestamp, which must
// lie in the last 30 days.
func (s *Server) findMachinesByIP(x *exchange) {
	args := parseFuncArgs(x.param("args"))
	ipText, ok := args["ip"]
	window := 15 * time.Minute
	if !ok {
		ipText, ok = args["key"]
		window = 16 * time.Minute
	}
	if !ok || ipText == "" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter ip is missing.")
		return
	}
	tsText, ok := args["timestamp"]
	if !ok || tsText == "" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter timestamp is missing.")
		return
	}
	ip, err := netip.ParseAddr(ipText)
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidIpAddress", fmt.Sprintf("Invalid IP address: %s", ipText))
		return
	}
	ts, err := odata.ParseDateTime(tsText)
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input %s", tsText))
		return
	}
	now := s.now()
	if ts.Before(now.Add(-30 * 24 * time.Hour)) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "The timestamp must be within the last 30 days.")
		return
	}
	ms := s.tenant.selectMachines(func(m *machine) bool {
		// An active machine is taken to be online until now.
		end := m.LastSeen
		if m.HealthStatus == "Active" {
			end = now
		}
		if ts.Before(m.FirstSeen.Add(-window)) || ts.After(end.Add(window)) {
			return false
		}
		if m.LastIPAddress.OK && sameIP(m.LastIPAddress.V, ip) {
			return true
		}
		return slices.ContainsFunc(m.IPAddresses, func(a ipAddress) bool {
			return !ip.IsLoopback() && sameIP(a.IPAddress, ip)
		})
	})
	x.writeMachineCollection(ms)
}

func sameIP(s string, ip netip.Addr) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Unmap() == ip.Unmap()
}

// readBody decodes a JSON object body whose keys must all be in allowed:
// body parameters are case-sensitive, and a wrong casing is an unknown key.
func (x *exchange) readBody(allowed ...string) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, 1<<20))
	var body map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil || body == nil {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return nil, false
	}
	for k := range body {
		if !slices.Contains(allowed, k) {
			x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
			return nil, false
		}
	}
	return body, true
}

// bodyString reads a required string parameter of a body.
func (x *exchange) bodyString(body map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := body[name]
	if !ok || string(raw) == "null" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", fmt.Sprintf("Parameter %s is missing.", name))
		return "", false
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return "", false
	}
	return v, true
}

var deviceValues = []string{"Normal", "Low", "High"}

func validTag(t string) bool { return strings.TrimSpace(t) != "" && len(t) <= 200 }

// patchMachine is PATCH /api/machines/{id} with {"machineTags":[...],
// "deviceValue":"..."}: the tag list replaces the machine's tags.
func (s *Server) patchMachine(x *exchange) {
	body, ok := x.readBody("machineTags", "deviceValue")
	if !ok {
		return
	}
	if len(body) == 0 {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return
	}
	var tags []string
	var value *string
	if raw, ok := body["machineTags"]; ok {
		if err := json.Unmarshal(raw, &tags); err != nil || slices.ContainsFunc(tags, func(t string) bool { return !validTag(t) }) {
			x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
			return
		}
	}
	if raw, ok := body["deviceValue"]; ok {
		if err := json.Unmarshal(raw, &value); err != nil || value == nil || !slices.Contains(deviceValues, *value) {
			x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
			return
		}
	}
	id := x.param("id")
	m, err := s.tenant.updateMachine(id, func(m *machine) error {
		if _, ok := body["machineTags"]; ok {
			m.MachineTags = dedupeTags(tags)
		}
		if value != nil {
			m.DeviceValue = some(*value)
		}
		return nil
	})
	if err != nil {
		x.machineNotFound(id)
		return
	}
	x.writeMachine(m)
}

func dedupeTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, t) }) {
			out = append(out, t)
		}
	}
	return out
}

// changeTag adds or removes one tag; tags compare case-insensitively.
func changeTag(m *machine, tag, action string) {
	has := func(t string) bool { return strings.EqualFold(t, tag) }
	if action == "Add" {
		if !slices.ContainsFunc(m.MachineTags, has) {
			m.MachineTags = append(m.MachineTags, tag)
		}
		return
	}
	m.MachineTags = slices.DeleteFunc(m.MachineTags, has)
}

// tagArgs reads {"Value","Action"} of the tag endpoints.
func (x *exchange) tagArgs(body map[string]json.RawMessage) (tag, action string, ok bool) {
	if tag, ok = x.bodyString(body, "Value"); !ok {
		return "", "", false
	}
	if action, ok = x.bodyString(body, "Action"); !ok {
		return "", "", false
	}
	if !validTag(tag) || (action != "Add" && action != "Remove") {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return "", "", false
	}
	return tag, action, true
}

// tagMachine is POST /api/machines/{id}/tags with {"Value","Action"}.
func (s *Server) tagMachine(x *exchange) {
	body, ok := x.readBody("Value", "Action")
	if !ok {
		return
	}
	tag, action, ok := x.tagArgs(body)
	if !ok {
		return
	}
	id := x.param("id")
	m, err := s.tenant.updateMachine(id, func(m *machine) error {
		changeTag(m, tag, action)
		return nil
	})
	if err != nil {
		x.machineNotFound(id)
		return
	}
	x.writeMachine(m)
}

// maxTagBatch is the largest MachineIds list of
// AddOrRemoveTagForMultipleMachines.
const maxTagBatch = 500

// tagMachines is POST /api/machines/AddOrRemoveTagForMultipleMachines with
// {"Value","Action","MachineIds":[...]}; unknown ids are skipped.
func (s *Server) tagMachines(x *exchange) {
	body, ok := x.readBody("Value", "Action", "MachineIds")
	if !ok {
		return
	}
	tag, action, ok := x.tagArgs(body)
	if !ok {
		return
	}
	raw, ok := body["MachineIds"]
	var ids []string
	if !ok || json.Unmarshal(raw, &ids) != nil || len(ids) == 0 {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter MachineIds is missing.")
		return
	}
	if len(ids) > maxTagBatch {
		x.mdeError(http.StatusBadRequest, "MaximumBatchSizeExceeded", fmt.Sprintf("Maximum batch size exceeded. Received: %d, allowed: %d.", len(ids), maxTagBatch))
		return
	}
	var updated []*machine
	for _, id := range ids {
		m, err := s.tenant.updateMachine(id, func(m *machine) error {
			changeTag(m, tag, action)
			return nil
		})
		if err == nil {
			updated = append(updated, m)
		}
	}
	x.writeMachineCollection(updated)
}

// setDeviceValue is POST /api/machines/{id}/setDeviceValue with
// {"DeviceValue":"Normal"|"Low"|"High"}.
func (s *Server) setDeviceValue(x *exchange) {
	body, ok := x.readBody("DeviceValue")
	if !ok {
		return
	}
	value, ok := x.bodyString(body, "DeviceValue")
	if !ok {
		return
	}
	if !slices.Contains(deviceValues, value) {
		x.mdeError(http.StatusBadRequest, "InvalidRequestBody", "Request body is incorrect")
		return
	}
	id := x.param("id")
	m, err := s.tenant.updateMachine(id, func(m *machine) error {
		m.DeviceValue = some(value)
		return nil
	})
	if err != nil {
		x.machineNotFound(id)
		return
	}
	x.writeMachine(m)
}
