package emulator

import (
	"strconv"
	"time"
)

// Encoders of the TVM export records (mde-api.md §4.13), in the key order
// and with the nulls of Microsoft's examples. Export timestamps have a space
// and no zone ("2020-12-30 14:17:26"); endOfSupportDate has an offset.

const (
	exportTimeLayout  = "2006-01-02 15:04:05"
	exportEventLayout = "2006-01-02 15:04:05.0000000"
	exportDateLayout  = "2006-01-02T15:04:05+00:00"
)

// rowContext is what every row of one machine shares.
type rowContext struct {
	m         *machine
	spec      tvmMachineSpec
	osVersion string
	arch      string
	rbacName  string
	lastSeen  time.Time
}

// deviceSoftware is what a row of the machine says of it and of product p
// at version.
func (c *rowContext) deviceSoftware(p *tvmProduct, version string) DeviceSoftware {
	return DeviceSoftware{
		DeviceID: c.m.ID, DeviceName: c.m.ComputerDNSName, OSPlatform: c.m.OSPlatform, OSVersion: c.osVersion, OSArchitecture: c.arch,
		SoftwareVendor: p.vendor, SoftwareName: p.name, SoftwareVersion: version,
	}
}

// rowContext prepares machine i of the snapshot.
func (s *tvmSnapshot) rowContext(i int) rowContext {
	m := s.machines[i]
	ctx := rowContext{m: m, rbacName: "Unassigned", lastSeen: s.at, arch: "x64"}
	if s.joined[i].After(s.at) {
		return ctx // not in the tenant yet: no rows
	}
	ctx.spec = s.model.spec(m, s.joined[i])
	if ctx.spec.arch != "" {
		ctx.arch = ctx.spec.arch
	}
	if m.RBACGroupName.OK {
		ctx.rbacName = m.RBACGroupName.V
	}
	if !m.LastSeen.IsZero() && m.LastSeen.Before(s.at) {
		ctx.lastSeen = m.LastSeen
	}
	ctx.osVersion = s.model.osVersion(&ctx.spec, s.at)
	return ctx
}

// osVersion is the OS version export rows show for a machine at t.
func (tm *tvmModel) osVersion(spec *tvmMachineSpec, t time.Time) string {
	for i := range spec.installs {
		in := &spec.installs[i]
		if in.p.os && in.p.osVer != nil {
			n, _ := tm.stepOf(in, t)
			return in.p.osVer(n)
		}
	}
	return ""
}

// fixInfo names the update that fixes a CVE in an export row.
type fixInfo struct{ update, id, url opt[string] }

var monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

// fix is the recommended security update for c on p.
func (tm *tvmModel) fix(p *tvmProduct, c *tvmCVE) fixInfo {
	if c == nil {
		return fixInfo{}
	}
	l := p.line
	rel := tm.release(l, c.fixStep)
	h := hashOf(tm.seed, 8, uint64(l.idx), uint64(int64(c.fixStep)))
	year := strconv.Itoa(rel.Year())
	switch l.fix {
	case fixMonthlyKB:
		kb := strconv.Itoa(5040000 + int(hashOf(tm.seed, 9, uint64(p.idx), uint64(int64(c.fixStep)))%60000))
		return fixInfo{
			update: some(monthNames[rel.Month()-1] + " " + year + " Security Updates"),
			id:     some(kb),
			url:    some("https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB" + kb),
		}
	case fixRHSA:
		n := strconv.Itoa(1000 + int(h%9000))
		id := "RHSA-" + year + ":" + n
		return fixInfo{update: some(c.id + "_oval:com.redhat.rhsa:def:" + year + "0" + n), id: some(id), url: some("https://access.redhat.com/errata/" + id)}
	case fixUSN:
		id := "USN-" + strconv.Itoa(6000+int(h%2000)) + "-1"
		return fixInfo{update: some(c.id + "_oval:com.ubuntu.jammy:def:" + strconv.Itoa(60000000+int(h%9999999))), id: some(id), url: some("https://ubuntu.com/security/notices/" + id)}
	case fixDSA:
		n := strconv.Itoa(5500 + int(h%900))
		return fixInfo{update: some(c.id + "_oval:org.debian:def:" + n), id: some("DSA-" + n + "-1"), url: some("https://www.debian.org/security/" + year + "/dsa-" + n)}
	case fixSUSE:
		id := "SUSE-SU-" + year + ":" + strconv.Itoa(1000+int(h%3000)) + "-1"
		return fixInfo{update: some(c.id + "_oval:org.opensuse.security:def:" + strconv.Itoa(int(h%99999999))), id: some(id), url: some("https://www.suse.com/support/update/")}
	case fixApple:
		return fixInfo{update: some(p.display + " " + tm.version(p, c.fixStep)), url: some("https://support.apple.com/en-us/100100")}
	}
	// Third-party applications: TVM names an advisory number, with no id or
	// link (the docs' Firefox row: "193220").
	return fixInfo{update: some(strconv.Itoa(100000 + int(h%900000)))}
}

// vulnRowData are the derived fields of one vulnerability row.
type vulnRowData struct {
	version string
	fix     fixInfo
	exploit string
}

func (tm *tvmModel) vulnRowAt(in *tvmInstall, n int, c *tvmCVE, at time.Time) vulnRowData {
	d := vulnRowData{version: tm.version(in.p, n), exploit: "NoExploit"}
	if c != nil {
		d.fix = tm.fix(in.p, c)
		d.exploit = c.exploitLevel(at)
	}
	return d
}

// deltaFields are the extra fields of a DeltaAssetVulnerability row.
type deltaFields struct {
	status string // New, Fixed, Updated
	at     time.Time
}

func appendExportTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, exportTimeLayout)
	return append(b, '"')
}

func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendVulnRow appends one AssetVulnerability (or, with d,
// DeltaAssetVulnerability) record.
func (tm *tvmModel) appendVulnRow(b []byte, ctx *rowContext, in *tvmInstall, n int, c *tvmCVE, first, at time.Time, d *deltaFields) []byte {
	m, p := ctx.m, in.p
	row := tm.vulnRowAt(in, n, c, at)
	cve := ""
	if c != nil {
		cve = c.id
	}
	b = append(b, `{"id":`...)
	b = appendString(b, m.ID+"_"+p.vendor+"_"+p.name+"_"+row.version+"_"+cve)
	b = append(b, `,"deviceId":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"rbacGroupName":`...)
	b = appendString(b, ctx.rbacName)
	b = append(b, `,"deviceName":`...)
	b = appendString(b, m.ComputerDNSName)
	b = append(b, `,"osPlatform":`...)
	b = appendString(b, m.OSPlatform)
	b = append(b, `,"osVersion":`...)
	b = appendString(b, ctx.osVersion)
	b = append(b, `,"osArchitecture":`...)
	b = appendString(b, ctx.arch)
	b = append(b, `,"softwareVendor":`...)
	b = appendString(b, p.vendor)
	b = append(b, `,"softwareName":`...)
	b = appendString(b, p.name)
	b = append(b, `,"softwareVersion":`...)
	b = appendString(b, row.version)
	b = append(b, `,"cveId":`...)
	if c == nil {
		b = append(b, `null,"vulnerabilitySeverityLevel":null`...)
	} else {
		b = appendString(b, c.id)
		b = append(b, `,"vulnerabilitySeverityLevel":`...)
		b = appendString(b, c.severity)
	}
	b = append(b, `,"recommendedSecurityUpdate":`...)
	b = appendOptString(b, row.fix.update)
	b = append(b, `,"recommendedSecurityUpdateId":`...)
	b = appendOptString(b, row.fix.id)
	b = append(b, `,"recommendedSecurityUpdateUrl":`...)
	b = appendOptString(b, row.fix.url)
	b = append(b, `,"diskPaths":`...)
	b = appendStrings(b, p.disk)
	b = append(b, `,"registryPaths":`...)
	b = appendStrings(b, p.reg)
	b = append(b, `,"lastSeenTimestamp":`...)
	b = appendExportTime(b, maxTime(ctx.lastSeen, first))
	b = append(b, `,"firstSeenTimestamp":`...)
	b = appendExportTime(b, first)
	b = append(b, `,"exploitabilityLevel":`...)
	b = appendString(b, row.exploit)
	b = append(b, `,"recommendationReference":`...)
	b = appendString(b, "va-_-"+p.vendor+"-_-"+p.name)
	if d != nil {
		b = append(b, `,"status":`...)
		b = appendString(b, d.status)
		b = append(b, `,"eventTimestamp":"`...)
		b = d.at.UTC().AppendFormat(b, exportEventLayout)
		b = append(b, '"')
	} else {
		b = append(b, `,"securityUpdateAvailable":`...)
		b = strconv.AppendBool(b, !in.eos(at))
	}
	b = append(b, `,"cvssScore":`...)
	if c == nil {
		b = append(b, "null"...)
	} else {
		b = appendFloat(b, c.cvss)
	}
	if d != nil {
		b = append(b, `,"rbacGroupId":`...)
		b = strconv.AppendInt(b, ctx.m.RBACGroupID, 10)
		b = append(b, `,"isOnboarded":`...)
		b = strconv.AppendBool(b, ctx.m.OnboardingStatus == "Onboarded")
	}
	return append(b, '}')
}

// appendSoftwareRow appends one AssetSoftware record.
func (tm *tvmModel) appendSoftwareRow(b []byte, ctx *rowContext, in *tvmInstall, n int, first time.Time, weaknesses int, at time.Time) []byte {
	m, p := ctx.m, in.p
	b = append(b, `{"deviceId":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"rbacGroupName":`...)
	b = appendString(b, ctx.rbacName)
	b = append(b, `,"deviceName":`...)
	b = appendString(b, m.ComputerDNSName)
	b = append(b, `,"osPlatform":`...)
	b = appendString(b, m.OSPlatform)
	b = append(b, `,"softwareVendor":`...)
	b = appendString(b, p.vendor)
	b = append(b, `,"softwareName":`...)
	b = appendString(b, p.name)
	b = append(b, `,"softwareVersion":`...)
	b = appendString(b, tm.version(p, n))
	b = append(b, `,"numberOfWeaknesses":`...)
	b = strconv.AppendInt(b, int64(weaknesses), 10)
	b = append(b, `,"diskPaths":`...)
	b = appendStrings(b, p.disk)
	b = append(b, `,"registryPaths":`...)
	b = appendStrings(b, p.reg)
	b = append(b, `,"softwareFirstSeenTimestamp":`...)
	b = appendExportTime(b, first)
	b = append(b, `,"endOfSupportStatus":`...)
	b = appendString(b, eosStatus(p, at))
	b = append(b, `,"endOfSupportDate":`...)
	if p.eos.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = p.eos.UTC().AppendFormat(b, exportDateLayout)
		b = append(b, '"')
	}
	return append(b, '}')
}
