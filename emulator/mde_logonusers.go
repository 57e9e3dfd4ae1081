package emulator

import (
	"net/http"
	"strings"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// GET /api/machines/{id}/logonusers (mde-api.md §5.1): the accounts that
// logged on to a machine in the last 30 days, as a #Users collection with
// the live key order and nulls (observed/get_machine_logon_users.json).

func (s *Server) addLogonUserRoutes() {
	s.routes.add(&route{method: "GET", template: "/api/machines/{id}/logonusers", surface: surfaceMDE,
		roles: []string{"User.Read.All"}, limit: defaultLimit, handle: s.listLogonUsers})
}

var logonUserOptions = odata.QueryLimits{MaxTop: maxMachinePage, Options: []string{"$top", "$skip"}}

func (s *Server) listLogonUsers(x *exchange) {
	q, err := odata.ParseQuery(x.r.URL.RawQuery, logonUserOptions)
	if err != nil {
		x.odataError(err)
		return
	}
	id := x.param("id")
	m := s.tenant.findMachine(id)
	if m == nil {
		x.machineNotFound(id)
		return
	}
	users := s.tenant.visibleLogonUsers(m, s.now())
	users = users[min(q.Skip, len(users)):]
	if q.HasTop {
		users = users[:min(q.Top, len(users))]
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#Users")
	b = append(b, `,"value":[`...)
	for i := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLogonUser(b, &users[i])
	}
	b = append(b, "]}"...)
	x.odata(http.StatusOK, b)
}

// appendLogonUser writes a User as the live service does. accountSid,
// mostPrevalentMachineId, leastPrevalentMachineId, logOnMachinesCount and
// isOnlyNetworkUser are null in the live capture (the 2020 doc example
// showed isOnlyNetworkUser false); the emulator follows the capture.
func appendLogonUser(b []byte, u *logonUser) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, u.Domain+`\`+u.Name)
	b = append(b, `,"accountName":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"accountDomain":`...)
	b = appendString(b, u.Domain)
	b = append(b, `,"accountSid":null,"firstSeen":`...)
	b = appendTime(b, u.FirstSeen)
	b = append(b, `,"lastSeen":`...)
	b = appendTime(b, u.LastSeen)
	b = append(b, `,"mostPrevalentMachineId":null,"leastPrevalentMachineId":null,"logonTypes":`...)
	b = appendString(b, strings.Join(u.LogonTypes, ", "))
	b = append(b, `,"logOnMachinesCount":null,"isDomainAdmin":`...)
	if u.DomainAdmin {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	return append(b, `,"isOnlyNetworkUser":null}`...)
}
