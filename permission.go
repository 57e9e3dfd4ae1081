package mdebridge

// Feature is something mdebridge does that needs MDE application permissions.
// The doctor command checks each feature against the roles a token carries.
type Feature struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	AnyOf       []string `json:"anyOf"` // any one of these application roles suffices
}

// Features lists what mdebridge does and the permissions each needs, as
// Microsoft documents them for the WindowsDefenderATP API.
func Features() []Feature {
	return []Feature{
		{Name: "machines", Description: "machine inventory sync, machines list/show", AnyOf: []string{"Machine.Read.All", "Machine.ReadWrite.All"}},
		{Name: "machine-tags", Description: "tag machines, set device value", AnyOf: []string{"Machine.ReadWrite.All"}},
		{Name: "vulnerabilities", Description: "vulnerability exports, CVE catalogue", AnyOf: []string{"Vulnerability.Read.All"}},
		{Name: "software", Description: "software inventory export", AnyOf: []string{"Software.Read.All"}},
		{Name: "hunting", Description: "advanced hunting (logon users, hunt)", AnyOf: []string{"AdvancedQuery.Read.All"}},
		{Name: "logon-users", Description: "per-machine logon users (fallback when hunting is not permitted)", AnyOf: []string{"User.Read.All"}},
		{Name: "alerts", Description: "alert ingestion as incidents", AnyOf: []string{"Alert.Read.All", "Alert.ReadWrite.All"}},
		{Name: "alert-updates", Description: "mirror incident changes back to MDE alerts", AnyOf: []string{"Alert.ReadWrite.All"}},
		{Name: "isolate", Description: "isolate / unisolate", AnyOf: []string{"Machine.Isolate"}},
		{Name: "scan", Description: "antivirus scan", AnyOf: []string{"Machine.Scan"}},
		{Name: "collect", Description: "collect an investigation package", AnyOf: []string{"Machine.CollectForensics"}},
		{Name: "restrict", Description: "restrict / unrestrict code execution", AnyOf: []string{"Machine.RestrictExecution"}},
		{Name: "quarantine-file", Description: "stop and quarantine a file (also needs machine read)", AnyOf: []string{"Machine.StopAndQuarantine"}},
		{Name: "offboard", Description: "offboard a machine", AnyOf: []string{"Machine.Offboard"}},
		{Name: "live-response", Description: "live response: run scripts, get and put files", AnyOf: []string{"Machine.LiveResponse"}},
		{Name: "investigate", Description: "start automated investigations", AnyOf: []string{"Alert.ReadWrite.All"}},
		{Name: "investigations", Description: "list automated investigations", AnyOf: []string{"Alert.Read.All", "Alert.ReadWrite.All"}},
		{Name: "enrich-files", Description: "enrich: file profiles and prevalence", AnyOf: []string{"File.Read.All"}},
		{Name: "enrich-ips", Description: "enrich: IP address prevalence", AnyOf: []string{"Ip.Read.All"}},
		{Name: "enrich-domains", Description: "enrich: domain and URL prevalence", AnyOf: []string{"URL.Read.All"}},
		{Name: "indicators", Description: "custom indicators push and pull", AnyOf: []string{"Ti.ReadWrite.All", "Ti.ReadWrite"}},
	}
}
