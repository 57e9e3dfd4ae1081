package emulator

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/emulator/kql"
)

// Advanced hunting tables. Each is a kql.Table registered in the server's
// catalog; adding a table is one registration (Server.addHuntingTable).
// The Device* tables here generate their rows lazily, machine by machine
// and day by day, from the tenant's seed, so a 100,000-machine tenant holds
// no event in memory and the same query always gives the same rows. They
// hold the last 30 days, as the service does.

// event is one row of a device table before it becomes columns: the union
// of what the tables need.
type event struct {
	ts           int64 // Unix ns
	action       string
	file         *binary
	cmd          string
	pid          int64
	account      account
	integrity    string
	elevation    string
	init         *process
	remoteIP     string
	remotePort   int64
	remoteURL    string
	remoteIPType string
	localIP      string
	localPort    int64
	protocol     string
	regKey       string
	regValueName string
	regValueData string
	regValueType string
	prevRegData  string
	originURL    string
	originIP     string
	prevFileName string
	logonType    string
	failure      string
	localAdmin   kql.Value
	logonID      int64
	remoteDevice string
	additional   any
	reportID     int64
	loggedOn     func() string // DeviceInfo.LoggedOnUsers, made only when read
}

// account is a user as event columns name one.
type account struct{ domain, name, sid string }

// binary is an executable or file with its hashes.
type binary struct {
	name, folder         string
	sha1, sha256, md5    string
	size                 int64
	company, product     string
	signature            string // Valid, Unsigned
	integrity, elevation string // of a process running it, when not the user's
}

// process is a running process: the initiating process of an event.
type process struct {
	bin       *binary
	cmd       string
	pid       int64
	account   account
	parent    string
	parentPID int64
	integrity string
	elevation string
	created   int64
}

// colDef is how a table column reads an event of a machine.
type colDef struct {
	typ kql.Type
	get func(m *machine, e *event) kql.Value
}

func str(s string) kql.Value { return kql.Value{Kind: kql.String, S: s} }
func long(n int64) kql.Value { return kql.Value{Kind: kql.Long, I: n} }
func optLong(n int64) kql.Value {
	if n == 0 {
		return kql.Value{}
	}
	return long(n)
}
func optTime(ns int64) kql.Value {
	if ns == 0 {
		return kql.Value{}
	}
	return kql.Value{Kind: kql.DateTime, I: ns}
}

func initBin(e *event) *binary {
	if e.init == nil || e.init.bin == nil {
		return &binary{}
	}
	return e.init.bin
}

func initProc(e *event) *process {
	if e.init == nil {
		return &process{}
	}
	return e.init
}

func fileOf(e *event) *binary {
	if e.file == nil {
		return &binary{}
	}
	return e.file
}

// huntingColumns are the columns of the device tables, by Microsoft's
// names, with their Microsoft types. A read-only lookup table.
var huntingColumns = map[string]colDef{
	"Timestamp":  {kql.DateTime, func(_ *machine, e *event) kql.Value { return kql.Value{Kind: kql.DateTime, I: e.ts} }},
	"DeviceId":   {kql.String, func(m *machine, _ *event) kql.Value { return str(m.ID) }},
	"DeviceName": {kql.String, func(m *machine, _ *event) kql.Value { return str(strings.ToLower(m.ComputerDNSName)) }},
	"ActionType": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.action) }},
	"ReportId":   {kql.Long, func(_ *machine, e *event) kql.Value { return long(e.reportID) }},
	"AdditionalFields": {kql.Dynamic, func(_ *machine, e *event) kql.Value {
		if e.additional == nil {
			return kql.Value{}
		}
		return kql.DynamicValue(e.additional)
	}},

	"FileName":                      {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).name) }},
	"FolderPath":                    {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).folder) }},
	"SHA1":                          {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).sha1) }},
	"SHA256":                        {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).sha256) }},
	"MD5":                           {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).md5) }},
	"FileSize":                      {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(fileOf(e).size) }},
	"ProcessVersionInfoCompanyName": {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).company) }},
	"ProcessVersionInfoProductName": {kql.String, func(_ *machine, e *event) kql.Value { return str(fileOf(e).product) }},
	"ProcessId":                     {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(e.pid) }},
	"ProcessCommandLine":            {kql.String, func(_ *machine, e *event) kql.Value { return str(e.cmd) }},
	"ProcessIntegrityLevel":         {kql.String, func(_ *machine, e *event) kql.Value { return str(e.integrity) }},
	"ProcessTokenElevation":         {kql.String, func(_ *machine, e *event) kql.Value { return str(e.elevation) }},
	"ProcessCreationTime": {kql.DateTime, func(_ *machine, e *event) kql.Value {
		if e.pid == 0 {
			return kql.Value{}
		}
		return kql.Value{Kind: kql.DateTime, I: e.ts}
	}},
	"AccountDomain": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.account.domain) }},
	"AccountName":   {kql.String, func(_ *machine, e *event) kql.Value { return str(e.account.name) }},
	"AccountSid":    {kql.String, func(_ *machine, e *event) kql.Value { return str(e.account.sid) }},
	"LogonId":       {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(e.logonID) }},

	"InitiatingProcessAccountDomain": {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).account.domain) }},
	"InitiatingProcessAccountName":   {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).account.name) }},
	"InitiatingProcessAccountSid":    {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).account.sid) }},
	"InitiatingProcessSHA1":          {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).sha1) }},
	"InitiatingProcessSHA256":        {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).sha256) }},
	"InitiatingProcessMD5":           {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).md5) }},
	"InitiatingProcessFileName":      {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).name) }},
	"InitiatingProcessFileSize":      {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(initBin(e).size) }},
	"InitiatingProcessId":            {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(initProc(e).pid) }},
	"InitiatingProcessCommandLine":   {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).cmd) }},
	"InitiatingProcessCreationTime":  {kql.DateTime, func(_ *machine, e *event) kql.Value { return optTime(initProc(e).created) }},
	"InitiatingProcessFolderPath":    {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).folder) }},
	"InitiatingProcessParentId":      {kql.Long, func(_ *machine, e *event) kql.Value { return optLong(initProc(e).parentPID) }},
	"InitiatingProcessParentFileName": {kql.String, func(_ *machine, e *event) kql.Value {
		return str(initProc(e).parent)
	}},
	"InitiatingProcessSignatureStatus": {kql.String, func(_ *machine, e *event) kql.Value { return str(initBin(e).signature) }},
	"InitiatingProcessIntegrityLevel":  {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).integrity) }},
	"InitiatingProcessTokenElevation":  {kql.String, func(_ *machine, e *event) kql.Value { return str(initProc(e).elevation) }},

	"RemoteIP":     {kql.String, func(_ *machine, e *event) kql.Value { return str(e.remoteIP) }},
	"RemotePort":   {kql.Int, func(_ *machine, e *event) kql.Value { return intOrNull(e.remotePort) }},
	"RemoteUrl":    {kql.String, func(_ *machine, e *event) kql.Value { return str(e.remoteURL) }},
	"RemoteIPType": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.remoteIPType) }},
	"LocalIP":      {kql.String, func(_ *machine, e *event) kql.Value { return str(e.localIP) }},
	"LocalPort":    {kql.Int, func(_ *machine, e *event) kql.Value { return intOrNull(e.localPort) }},
	"Protocol":     {kql.String, func(_ *machine, e *event) kql.Value { return str(e.protocol) }},
	"LocalIPType": {kql.String, func(_ *machine, e *event) kql.Value {
		if e.localIP == "" {
			return str("")
		}
		return str("Private")
	}},

	"RegistryKey":               {kql.String, func(_ *machine, e *event) kql.Value { return str(e.regKey) }},
	"RegistryValueType":         {kql.String, func(_ *machine, e *event) kql.Value { return str(e.regValueType) }},
	"RegistryValueName":         {kql.String, func(_ *machine, e *event) kql.Value { return str(e.regValueName) }},
	"RegistryValueData":         {kql.String, func(_ *machine, e *event) kql.Value { return str(e.regValueData) }},
	"PreviousRegistryValueData": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.prevRegData) }},

	"FileOriginUrl":    {kql.String, func(_ *machine, e *event) kql.Value { return str(e.originURL) }},
	"FileOriginIP":     {kql.String, func(_ *machine, e *event) kql.Value { return str(e.originIP) }},
	"PreviousFileName": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.prevFileName) }},

	"LogonType":        {kql.String, func(_ *machine, e *event) kql.Value { return str(e.logonType) }},
	"FailureReason":    {kql.String, func(_ *machine, e *event) kql.Value { return str(e.failure) }},
	"IsLocalAdmin":     {kql.Bool, func(_ *machine, e *event) kql.Value { return e.localAdmin }},
	"RemoteDeviceName": {kql.String, func(_ *machine, e *event) kql.Value { return str(e.remoteDevice) }},

	// DeviceInfo: the machine as it reported itself.
	"ClientVersion":   {kql.String, func(m *machine, _ *event) kql.Value { return str(m.AgentVersion.V) }},
	"PublicIP":        {kql.String, func(m *machine, _ *event) kql.Value { return str(m.LastExternalIPAddress.V) }},
	"OSArchitecture":  {kql.String, func(m *machine, _ *event) kql.Value { return str(m.OSArchitecture.V) }},
	"OSPlatform":      {kql.String, func(m *machine, _ *event) kql.Value { return str(m.OSPlatform) }},
	"OSBuild":         {kql.Long, func(m *machine, _ *event) kql.Value { return optLong(m.OSBuild.V) }},
	"IsAzureADJoined": {kql.Bool, func(m *machine, _ *event) kql.Value { return optBool(m.IsAADJoined) }},
	"JoinType":        {kql.String, func(m *machine, _ *event) kql.Value { return str(joinType(m)) }},
	"AadDeviceId":     {kql.String, func(m *machine, _ *event) kql.Value { return str(m.AADDeviceID.V) }},
	"LoggedOnUsers": {kql.String, func(_ *machine, e *event) kql.Value {
		if e.loggedOn == nil {
			return str("[]")
		}
		return str(e.loggedOn())
	}},
	"OSVersion": {kql.String, func(m *machine, _ *event) kql.Value {
		if strings.HasPrefix(m.OSPlatform, "Windows") {
			return str("10.0")
		}
		return str(m.Version.V)
	}},
	"MachineGroup":      {kql.String, func(m *machine, _ *event) kql.Value { return str(m.RBACGroupName.V) }},
	"OnboardingStatus":  {kql.String, func(m *machine, _ *event) kql.Value { return str(onboardingText(m.OnboardingStatus)) }},
	"DeviceCategory":    {kql.String, func(_ *machine, _ *event) kql.Value { return str("Endpoint") }},
	"DeviceType":        {kql.String, func(m *machine, _ *event) kql.Value { return str(deviceType(m)) }},
	"OSDistribution":    {kql.String, func(m *machine, _ *event) kql.Value { return str(m.OSPlatform) }},
	"OSVersionInfo":     {kql.String, func(m *machine, _ *event) kql.Value { return str(m.Version.V) }},
	"MergedToDeviceId":  {kql.String, func(m *machine, _ *event) kql.Value { return str(m.MergedIntoMachineID.V) }},
	"SensorHealthState": {kql.String, func(m *machine, _ *event) kql.Value { return str(m.HealthStatus) }},
	"IsExcluded":        {kql.Bool, func(m *machine, _ *event) kql.Value { return kql.BoolValue(m.IsExcluded) }},
	"ExclusionReason":   {kql.String, func(m *machine, _ *event) kql.Value { return str(m.ExclusionReason.V) }},
	"ExposureLevel":     {kql.String, func(m *machine, _ *event) kql.Value { return str(m.ExposureLevel.V) }},
	"AssetValue":        {kql.String, func(m *machine, _ *event) kql.Value { return str(m.DeviceValue.V) }},
	"DeviceManualTags": {kql.Dynamic, func(m *machine, _ *event) kql.Value {
		tags := make([]any, len(m.MachineTags))
		for i, t := range m.MachineTags {
			tags[i] = t
		}
		return kql.DynamicValue(tags)
	}},
	"AzureVmId": {kql.String, func(m *machine, _ *event) kql.Value {
		return str(vmField(m, func(v *vmMetadata) opt[string] { return v.VMID }))
	}},
	"AzureResourceId": {kql.String, func(m *machine, _ *event) kql.Value {
		return str(vmField(m, func(v *vmMetadata) opt[string] { return v.ResourceID }))
	}},
	"AzureVmSubscriptionId": {kql.String, func(m *machine, _ *event) kql.Value {
		return str(vmField(m, func(v *vmMetadata) opt[string] { return v.SubscriptionID }))
	}},
}

func intOrNull(n int64) kql.Value {
	if n == 0 {
		return kql.Value{}
	}
	return kql.Value{Kind: kql.Int, I: n}
}

func optBool(b opt[bool]) kql.Value {
	if !b.OK {
		return kql.Value{}
	}
	return kql.BoolValue(b.V)
}

func vmField(m *machine, f func(*vmMetadata) opt[string]) string {
	if m.VMMetadata == nil {
		return ""
	}
	return f(m.VMMetadata).V
}

func joinType(m *machine) string {
	switch {
	case m.IsAADJoined.V && strings.Contains(m.ComputerDNSName, "."):
		return "Hybrid Azure AD Join"
	case m.IsAADJoined.V:
		return "AAD Joined"
	case strings.HasPrefix(m.OSPlatform, "Windows"):
		return "Domain Joined"
	}
	return ""
}

func deviceType(m *machine) string {
	if f := machineFamily(m); f == winServer || f == linux {
		return "Server"
	}
	return "Workstation"
}

// onboardingText is how DeviceInfo spells the API's onboardingStatus.
func onboardingText(s string) string {
	switch s {
	case "CanBeOnboarded":
		return "Can be onboarded"
	case "InsufficientInfo":
		return "Insufficient info"
	}
	return s
}

// generateFunc produces the events of one machine between from and to
// (Unix ns, inclusive); events outside are dropped by the caller.
type generateFunc func(g *huntGen, m *machine, from, to int64, emit func(*event) error) error

// deviceTable is a table whose rows are generated machine by machine; its
// partitions are machines (DeviceId, DeviceName).
type deviceTable struct {
	name   string
	cols   []kql.Column
	defs   []colDef
	tenant *Tenant
	gen    *huntGen
	rows   generateFunc
}

func newDeviceTable(t *Tenant, g *huntGen, name string, columns []string, rows generateFunc) *deviceTable {
	d := &deviceTable{name: name, tenant: t, gen: g, rows: rows}
	for _, c := range columns {
		def, ok := huntingColumns[c]
		if !ok {
			panic("emulator: hunting column " + c + " is not defined") // a programming error, caught by every test
		}
		d.cols = append(d.cols, kql.Column{Name: c, Type: def.typ})
		d.defs = append(d.defs, def)
	}
	return d
}

func (d *deviceTable) Name() string               { return d.name }
func (d *deviceTable) Columns() []kql.Column      { return slices.Clone(d.cols) }
func (d *deviceTable) PartitionColumns() []string { return []string{"DeviceId", "DeviceName"} }

func (d *deviceTable) Scan(ctx context.Context, f kql.Filter, emit func([]kql.Value) error) error {
	lo, hi := f.Now.Add(-logonWindow).UnixNano(), f.Now.UnixNano()
	if !f.From.IsZero() {
		lo = max(lo, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		hi = min(hi, f.To.UnixNano())
	}
	if hi < lo {
		return nil
	}
	idCol, nameCol := slices.IndexFunc(d.cols, func(c kql.Column) bool { return c.Name == "DeviceId" }),
		slices.IndexFunc(d.cols, func(c kql.Column) bool { return c.Name == "DeviceName" })
	probe := make([]kql.Value, len(d.cols))
	scratch := make([]kql.Value, len(d.cols))
	for i, m := range d.tenant.selectMachines(nil) {
		if i&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if f.Partition != nil {
			clear(probe)
			if idCol >= 0 {
				probe[idCol] = huntingColumns["DeviceId"].get(m, nil)
			}
			if nameCol >= 0 {
				probe[nameCol] = huntingColumns["DeviceName"].get(m, nil)
			}
			if !f.Partition(probe) {
				continue
			}
		}
		err := d.rows(d.gen, m, lo, hi, func(e *event) error {
			if e.ts < lo || e.ts > hi {
				return nil
			}
			for c, def := range d.defs {
				if f.Columns == nil || f.Columns[c] {
					scratch[c] = def.get(m, e)
				}
			}
			if f.Row != nil && !f.Row(scratch) {
				return nil
			}
			if f.Reuse {
				return emit(scratch)
			}
			return emit(slices.Clone(scratch))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// The tables' columns, in Microsoft's order (a subset of each table's).
var (
	deviceInfoColumns = []string{"Timestamp", "DeviceId", "DeviceName", "ClientVersion", "PublicIP", "OSArchitecture",
		"OSPlatform", "OSBuild", "IsAzureADJoined", "JoinType", "AadDeviceId", "LoggedOnUsers", "OSVersion", "MachineGroup",
		"ReportId", "OnboardingStatus", "DeviceCategory", "DeviceType", "OSDistribution", "OSVersionInfo",
		"MergedToDeviceId", "SensorHealthState", "IsExcluded", "ExclusionReason", "ExposureLevel", "AssetValue",
		"DeviceManualTags", "AzureVmId", "AzureResourceId", "AzureVmSubscriptionId"}
	initiatingColumns = []string{"InitiatingProcessAccountDomain", "InitiatingProcessAccountName",
		"InitiatingProcessAccountSid", "InitiatingProcessSHA1", "InitiatingProcessSHA256", "InitiatingProcessMD5",
		"InitiatingProcessFileName", "InitiatingProcessFileSize", "InitiatingProcessId", "InitiatingProcessCommandLine",
		"InitiatingProcessCreationTime", "InitiatingProcessFolderPath", "InitiatingProcessParentId",
		"InitiatingProcessParentFileName", "InitiatingProcessSignatureStatus", "InitiatingProcessIntegrityLevel",
		"InitiatingProcessTokenElevation"}
	deviceLogonEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "LogonType",
		"AccountDomain", "AccountName", "AccountSid", "Protocol", "FailureReason", "IsLocalAdmin", "LogonId",
		"RemoteDeviceName", "RemoteIP", "RemoteIPType", "RemotePort"}, append(slices.Clone(initiatingColumns), "AdditionalFields", "ReportId")...)
	deviceProcessEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "FileName",
		"FolderPath", "SHA1", "SHA256", "MD5", "FileSize", "ProcessVersionInfoCompanyName", "ProcessVersionInfoProductName",
		"ProcessId", "ProcessCommandLine", "ProcessIntegrityLevel", "ProcessTokenElevation", "ProcessCreationTime",
		"AccountDomain", "AccountName", "AccountSid", "LogonId"}, append(slices.Clone(initiatingColumns), "AdditionalFields", "ReportId")...)
	deviceNetworkEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "RemoteIP",
		"RemotePort", "RemoteUrl", "LocalIP", "LocalPort", "Protocol", "LocalIPType", "RemoteIPType"},
		append(slices.Clone(initiatingColumns), "AdditionalFields", "ReportId")...)
	deviceFileEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "FileName",
		"FolderPath", "SHA1", "SHA256", "MD5", "FileSize", "FileOriginUrl", "FileOriginIP", "PreviousFileName"},
		append(slices.Clone(initiatingColumns), "AdditionalFields", "ReportId")...)
	deviceRegistryEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "RegistryKey",
		"RegistryValueType", "RegistryValueName", "RegistryValueData", "PreviousRegistryValueData"},
		append(slices.Clone(initiatingColumns), "ReportId")...)
	deviceEventsColumns = append([]string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "FileName", "FolderPath",
		"SHA1", "SHA256", "MD5", "AccountDomain", "AccountName", "AccountSid", "RemoteUrl", "RemoteDeviceName",
		"ProcessId", "ProcessCommandLine", "RegistryKey", "RegistryValueName", "RegistryValueData", "RemoteIP",
		"RemotePort", "LocalIP", "LocalPort", "FileOriginUrl"}, append(slices.Clone(initiatingColumns), "AdditionalFields", "ReportId")...)
)

// deviceInfoRows makes DeviceInfo: a row each time the machine reported
// (its last report and up to three earlier ones in the window; the live
// table has a row per report, several a day), with the users logged on at
// that moment.
func deviceInfoRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	r := g.t.machineRand(m, 0x696e666f)
	last := m.LastSeen.UnixNano()
	times := []int64{last}
	first := max(m.FirstSeen.UnixNano(), last-int64(logonWindow))
	for range r.IntN(4) {
		if last > first {
			times = append(times, first+r.Int64N(last-first))
		}
	}
	slices.Sort(times)
	var users []logonUser
	usersOnce := false
	for i, ts := range times {
		if ts < from || ts > to {
			continue
		}
		e := &event{ts: ts, reportID: int64(r.Uint32()>>8) + int64(i), loggedOn: func() string {
			if !usersOnce {
				users, usersOnce = g.t.logonUsers(m), true
			}
			return loggedOnUsers(users, ts)
		}}
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}

// loggedOnUsers is DeviceInfo's LoggedOnUsers: a JSON string listing the
// interactive users whose logons span the report time.
func loggedOnUsers(users []logonUser, ts int64) string {
	var b []byte
	b = append(b, '[')
	n := 0
	for _, u := range users {
		if ts < u.FirstSeen.UnixNano() || ts > u.LastSeen.UnixNano()+int64(8*time.Hour) {
			continue
		}
		if !slices.ContainsFunc(u.LogonTypes, func(t string) bool {
			return t == "Interactive" || t == "RemoteInteractive" || t == "CachedInteractive" || t == "Unlock"
		}) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"UserName":`...)
		b = appendString(b, u.Name)
		b = append(b, `,"DomainName":`...)
		b = appendString(b, strings.ToUpper(u.Domain))
		b = append(b, `,"Sid":`...)
		b = appendString(b, u.SID)
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

var logonProtocols = map[string]string{
	"Interactive": "Negotiate", "RemoteInteractive": "Kerberos", "Network": "NTLM", "Service": "Negotiate",
	"Batch": "Negotiate", "Unlock": "Negotiate", "CachedInteractive": "Negotiate",
}

// deviceLogonRows makes DeviceLogonEvents from the machine's logon users:
// for each user a successful logon at its first and last time, one of each
// of its logon types, and regular ones in between, so that summarising the
// table gives back exactly the logon-user list; and failed logons of
// accounts that are nobody's (a password spray on some servers).
func deviceLogonRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	users := g.t.logonUsers(m)
	if len(users) == 0 {
		return nil
	}
	r := g.t.machineRand(m, 0x6c6f676f6e)
	fam := machineFamily(m)
	lsass := g.proc(g.bin("lsass.exe"), `lsass.exe`, systemAccount)
	sshd := map[string]*process{}
	var evs []*event
	logon := func(u *logonUser, ts int64, typ string) {
		e := &event{ts: ts, action: "LogonSuccess", logonType: typ, account: account{u.Domain, u.Name, u.SID},
			localAdmin: kql.BoolValue(u.LocalAdmin), logonID: int64(r.Uint32()), reportID: int64(r.Uint32() >> 4)}
		switch fam {
		case winClient, winServer:
			e.protocol = logonProtocols[typ]
			e.init = lsass
			if typ == "RemoteInteractive" || typ == "Network" {
				e.remoteIP, e.remoteIPType, e.remotePort = g.internalIP(r), "Private", 49152+r.Int64N(16000)
				e.remoteDevice = g.peerName(r)
			}
		default:
			if sshd[u.Name] == nil {
				sshd[u.Name] = g.proc(g.bin("sshd"), "sshd: "+u.Name+" [priv]", account{strings.ToLower(shortName(m)), "root", ""})
			}
			e.init = sshd[u.Name]
			if typ == "Network" {
				e.remoteIP, e.remoteIPType, e.remotePort = g.internalIP(r), "Private", 49152+r.Int64N(16000)
			}
		}
		evs = append(evs, e)
	}
	for i := range users {
		u := &users[i]
		a, b := u.FirstSeen.UnixNano(), u.LastSeen.UnixNano()
		if b < from || a > to {
			continue
		}
		k := len(u.LogonTypes)
		logon(u, a, u.LogonTypes[0])
		for j := 1; j < k; j++ {
			logon(u, a+(b-a)*int64(j)/int64(k), u.LogonTypes[j])
		}
		if b != a || k > 1 {
			logon(u, b, u.LogonTypes[k-1])
		}
		// Regular logons in between, about daily for the main user.
		days := (b - a) / int64(24*time.Hour)
		extra := min(days, 6)
		if !u.Primary {
			extra = min(days/7, 2)
		}
		for range extra {
			if b > a+2 {
				logon(u, a+1+r.Int64N(b-a-1), u.LogonTypes[r.IntN(k)])
			}
		}
	}
	// Failed logons: a spray of invented accounts from the internet on some
	// exposed servers, and the odd mistyped password.
	if (fam == winServer || fam == linux) && r.IntN(8) == 0 {
		at := m.LastSeen.Add(-time.Duration(r.Int64N(int64(20 * 24 * time.Hour)))).UnixNano()
		src := g.externalIP(r)
		for i := range 5 + r.IntN(20) {
			name := []string{"admin", "administrator", "test", "user", "root", "guest", "backup", "scanner"}[r.IntN(8)]
			evs = append(evs, &event{ts: at + int64(i)*int64(2*time.Second), action: "LogonFailed", logonType: "Network",
				account: account{"", name, ""}, failure: "InvalidUserNameOrPassword", protocol: "NTLM",
				remoteIP: src, remoteIPType: "Public", remotePort: 40000 + r.Int64N(20000), reportID: int64(r.Uint32() >> 4),
				localAdmin: kql.Value{}})
		}
	}
	if u := users[0]; r.IntN(6) == 0 && u.LastSeen.After(u.FirstSeen) {
		evs = append(evs, &event{ts: u.FirstSeen.UnixNano() + 1, action: "LogonFailed", logonType: u.LogonTypes[0],
			account: account{u.Domain, u.Name, u.SID}, failure: "WrongPassword", protocol: logonProtocols[u.LogonTypes[0]],
			reportID: int64(r.Uint32() >> 4)})
	}
	slices.SortStableFunc(evs, func(a, b *event) int { return cmp.Compare(a.ts, b.ts) })
	for _, e := range evs {
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}
