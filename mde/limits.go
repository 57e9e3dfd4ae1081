package mde

import (
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

// APIs are named by method and route template, as in "GET /api/machines" and
// "GET /api/machines/{id}"; the rate limits, the permission table and the
// call counts all use these names.

var (
	perMinute = func(n int) ratelimit.Window { return ratelimit.Window{Limit: n, Per: time.Minute} }
	perHour   = func(n int) ratelimit.Window { return ratelimit.Window{Limit: n, Per: time.Hour} }
)

// DocumentedLimits returns Microsoft's documented limits for an API
// (mde-api.md §2.1); everything not listed gets the default 100 calls per
// minute and 1,500 per hour.
func DocumentedLimits(api string) []ratelimit.Window {
	switch api {
	case "GET /api/machines/{id}/vulnerabilities":
		return []ratelimit.Window{perMinute(50), perHour(1500)}
	case "POST /api/advancedqueries/run":
		return []ratelimit.Window{perMinute(45), perHour(1500)}
	case "POST /api/alerts/batchUpdate":
		return []ratelimit.Window{perMinute(10), perHour(500)}
	case "POST /api/alerts/CreateAlertByReference":
		return []ratelimit.Window{perMinute(15)}
	case "POST /api/indicators/import":
		return []ratelimit.Window{perMinute(30)}
	case "POST /api/indicators/BatchDelete":
		return []ratelimit.Window{perMinute(30), perHour(1500)}
	case "GET /api/machineactions/{id}/getPackageUri":
		return []ratelimit.Window{perMinute(2), perHour(120)}
	case "POST /api/machines/{id}/runliveresponse":
		return []ratelimit.Window{perMinute(10)}
	case "POST /api/machines/{id}/startInvestigation":
		return []ratelimit.Window{perHour(50)}
	case "GET /api/machines/SoftwareVulnerabilitiesByMachine",
		"GET /api/machines/SoftwareVulnerabilityChangesByMachine",
		"GET /api/machines/SecureConfigurationsAssessmentByMachine",
		"GET /api/machines/SoftwareInventoryByMachine",
		"GET /api/machines/SoftwareInventoryNoProductCodeByMachine":
		return []ratelimit.Window{perMinute(30), perHour(1000)}
	case "GET /api/machines/SoftwareVulnerabilitiesExport",
		"GET /api/machines/SecureConfigurationsAssessmentExport",
		"GET /api/machines/SoftwareInventoryExport",
		"GET /api/machines/SoftwareInventoryNonCpeExport":
		return []ratelimit.Window{perMinute(5), perHour(20)}
	}
	return []ratelimit.Window{perMinute(100), perHour(1500)}
}

// safetyMargin widens each window a little: the service counts a call when it
// arrives, we count it when we send it, and the two clocks are not the same.
func safetyMargin(ws []ratelimit.Window) []ratelimit.Window {
	out := make([]ratelimit.Window, len(ws))
	for i, w := range ws {
		m := w.Per / 100
		if m < time.Second {
			m = time.Second
		}
		out[i] = ratelimit.Window{Limit: w.Limit, Per: w.Per + m}
	}
	return out
}

// RequiredRoles returns the application roles of which an API needs any one
// (mde-api.md §1.4 and §5).
func RequiredRoles(api string) []string {
	switch api {
	case "GET /api/machines", "GET /api/machines/{id}", "GET /api/machines/findbyip", "GET /api/machines/findbytag":
		return []string{"Machine.Read.All", "Machine.ReadWrite.All"}
	case "PATCH /api/machines/{id}", "POST /api/machines/{id}/tags", "POST /api/machines/{id}/setDeviceValue",
		"POST /api/machines/AddOrRemoveTagForMultipleMachines":
		return []string{"Machine.ReadWrite.All"}
	case "GET /api/machineactions", "GET /api/machineactions/{id}", "GET /api/machineactions/{id}/getPackageUri",
		"GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink", "GET /api/files/{id}/machines",
		"GET /api/domains/{domain}/machines", "GET /api/users/{id}/machines":
		return []string{"Machine.Read.All", "Machine.ReadWrite.All"}
	case "POST /api/machines/{id}/isolate", "POST /api/machines/{id}/unisolate":
		return []string{"Machine.Isolate"}
	case "POST /api/machines/{id}/runAntiVirusScan":
		return []string{"Machine.Scan"}
	case "POST /api/machines/{id}/collectInvestigationPackage":
		return []string{"Machine.CollectForensics"}
	case "POST /api/machines/{id}/restrictCodeExecution", "POST /api/machines/{id}/unrestrictCodeExecution":
		return []string{"Machine.RestrictExecution"}
	case "POST /api/machines/{id}/StopAndQuarantineFile":
		return []string{"Machine.StopAndQuarantine"}
	case "POST /api/machines/{id}/offboard":
		return []string{"Machine.Offboard"}
	case "POST /api/machines/{id}/runliveresponse":
		return []string{"Machine.LiveResponse"}
	case "POST /api/machineactions/{id}/cancel":
		return []string{"Machine.CollectForensics", "Machine.Isolate", "Machine.RestrictExecution", "Machine.Scan",
			"Machine.Offboard", "Machine.StopAndQuarantine", "Machine.LiveResponse"}
	case "POST /api/machines/{id}/startInvestigation":
		return []string{"Alert.ReadWrite.All"}
	case "GET /api/investigations", "GET /api/investigations/{id}", "GET /api/files/{id}/alerts", "GET /api/ips/{ip}/alerts",
		"GET /api/domains/{domain}/alerts", "GET /api/users/{id}/alerts":
		return []string{"Alert.Read.All", "Alert.ReadWrite.All"}
	case "GET /api/indicators", "POST /api/indicators", "POST /api/indicators/import", "DELETE /api/indicators/{id}",
		"POST /api/indicators/BatchDelete":
		return []string{"Ti.ReadWrite.All", "Ti.ReadWrite"}
	case "GET /api/files/{id}", "GET /api/files/{id}/stats":
		return []string{"File.Read.All"}
	case "GET /api/ips/{ip}/stats":
		return []string{"Ip.Read.All"}
	case "GET /api/domains/{domain}/stats":
		return []string{"URL.Read.All"}
	case "GET /api/alerts", "GET /api/alerts/{id}", "GET /api/machines/{id}/alerts":
		return []string{"Alert.Read.All", "Alert.ReadWrite.All"}
	case "PATCH /api/alerts/{id}", "POST /api/alerts/batchUpdate", "POST /api/alerts/CreateAlertByReference":
		return []string{"Alert.ReadWrite.All"}
	case "POST /api/advancedqueries/run":
		return []string{"AdvancedQuery.Read.All"}
	case "GET /api/machines/{id}/logonusers":
		return []string{"User.Read.All"}
	}
	return nil
}
