package emulator

import (
	"strconv"
	"strings"
	"time"
)

// The software catalogue of the emulated TVM (threat and vulnerability
// management) data: product lines that release new versions on a cadence,
// each version step fixing a batch of CVEs. Names follow TVM's CPE-derived
// spelling (vendor "google", name "chrome"; "microsoft" / "windows_11";
// Linux packages under their distribution's vendor: "red_hat" / "openssl").

// osFamily is the kind of device a product installs on.
type osFamily uint8

const (
	famWinClient osFamily = 1 << iota
	famWinServer
	famLinux
	famMac
	famWindows = famWinClient | famWinServer
)

// osFamilyOf maps a machine's osPlatform to its family (0: no TVM data).
func osFamilyOf(platform string) osFamily {
	p := strings.ToLower(platform)
	switch {
	case strings.HasPrefix(p, "windowsserver"):
		return famWinServer
	case strings.HasPrefix(p, "windows"):
		return famWinClient
	case p == "macos":
		return famMac
	case p == "linux" || p == "ubuntu" || p == "debian" || p == "redhatenterpriselinux" || p == "suselinuxenterpriseserver" ||
		p == "centos" || p == "oraclelinux" || p == "amazonlinux" || p == "fedora":
		return famLinux
	}
	return 0
}

// fixKind is how a line's fixes are named in the export rows.
type fixKind uint8

const (
	fixNone      fixKind = iota // third-party app: a newer version, no named update
	fixMonthlyKB                // Microsoft: KB number, "February 2025 Security Updates"
	fixRHSA                     // RHSA-2025:0595
	fixUSN                      // USN-7663-1
	fixDSA                      // DSA-5890-1
	fixSUSE                     // SUSE-SU-2025:0123-1
	fixApple                    // "macOS Sequoia 15.2"
)

// tvmProduct is one installable product (one edition of a line).
type tvmProduct struct {
	idx     int
	line    *tvmLine
	edition int // bit in a CVE's editions mask
	vendor  string
	name    string
	display string // "Google Chrome"
	os      bool   // the operating system itself
	// platforms lists the osPlatform values an OS product belongs to.
	platforms []string
	// install is the chance a machine of each family has it.
	install map[osFamily]float64
	// roles, when set, install it only on machines whose name holds one.
	roles   []string
	version func(n int) string
	osVer   func(n int) string // the osVersion export rows show (OS products)
	disk    []string
	reg     []string
	// eos is when the product left support (zero: supported).
	eos time.Time
}

// tvmLine is a family of products that share a release cadence and CVEs
// (every Windows edition is patched the same Tuesday for mostly the same
// CVEs).
type tvmLine struct {
	idx      int
	name     string // for messages and descriptions: "Windows", "Google Chrome"
	period   time.Duration
	rate     float64 // CVEs fixed per release before density scaling
	maxSpan  int     // how many releases back a CVE may reach
	fix      fixKind
	severe   float64 // bias towards high CVSS (0..1)
	remote   float64 // share of network-reachable CVEs
	category string  // recommendationCategory: OS, Application
	products []*tvmProduct
	autoLag  float64 // lag factor: auto-updating products update sooner
	cap      int     // most CVEs one release fixes (numbering)
	cveBase  int     // first CVE number of this line in a year
}

const day = 24 * time.Hour

func dotted(parts ...int) string {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int { return a - floorDiv(a, b)*b }

// winBuild is a Windows cumulative update: build.revision growing monthly.
func winBuild(major, build, rev0 int) func(int) string {
	return func(n int) string { return dotted(10, 0, build, max(1, rev0+n*67)) }
}

func browserVersion(major0, build0 int) func(int) string {
	return func(n int) string {
		major := major0 + floorDiv(n, 4)
		return dotted(major, 0, build0+(major-major0)*88, 60+floorMod(n, 4)*31)
	}
}

func semverish(major, minor0, perMinor int) func(int) string {
	return func(n int) string {
		k := n + 1000*perMinor
		return dotted(major, minor0+k/perMinor-1000, floorMod(k, perMinor))
	}
}

func rhelPkg(base string, rel0 int) func(int) string {
	return func(n int) string { return base + "-" + strconv.Itoa(max(1, rel0+n)) + ".el9_4" }
}

func ubuntuPkg(base string, rel0 int) func(int) string {
	return func(n int) string { return base + "-0ubuntu0.22.04." + strconv.Itoa(max(1, rel0+n)) }
}

func debPkg(base string, rel0 int) func(int) string {
	return func(n int) string { return base + "+deb12u" + strconv.Itoa(max(1, rel0+n)) }
}

func susePkg(base string, rel0 int) func(int) string {
	return func(n int) string { return base + "-150600." + strconv.Itoa(max(1, rel0+n)) + ".1" }
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

const uninstall = `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\`
const uninstall32 = `HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\`

// linuxPackages are the packages every distribution line is built from:
// name, base version per distribution style, CVEs per release, release
// period in days, install chance.
var linuxPackages = []struct {
	name    string
	rhel    string
	ubuntu  string
	debian  string
	suse    string
	rate    float64
	days    int
	install float64
	display string
}{
	{"kernel", "0:5.14.0-427", "5.15.0-131", "6.1.0-31", "6.4.0", 6, 21, 1, "Linux kernel"},
	{"openssl", "1:3.0.7", "3.0.2", "3.0.15", "3.1.4", 1.2, 45, 1, "OpenSSL"},
	{"openssh", "8.7p1", "1:8.9p1-3", "1:9.2p1-2", "9.6p1", 0.8, 60, 0.97, "OpenSSH"},
	{"curl", "7.76.1", "7.81.0", "7.88.1", "8.6.0", 1, 40, 0.98, "curl"},
	{"glibc", "2.34", "2.35", "2.36-9", "2.38", 0.7, 60, 1, "GNU C Library"},
	{"sudo", "1.9.5p2", "1.9.9", "1.9.13p3", "1.9.15p5", 0.4, 90, 0.95, "sudo"},
	{"python3", "3.9.18", "3.10.12", "3.11.2", "3.11.10", 1, 45, 0.85, "Python"},
	{"systemd", "252", "249.11", "252.33", "254.24", 0.5, 60, 1, "systemd"},
	{"vim", "2:8.2.2637", "2:8.2.3995", "2:9.0.1378", "9.1.0836", 0.8, 45, 0.7, "Vim"},
	{"nginx", "1:1.20.1", "1.18.0", "1.22.1", "1.21.5", 0.5, 60, 0, "nginx"},
	{"postgresql", "13.16", "14.15", "15.10", "16.6", 0.6, 60, 0, "PostgreSQL"},
	{"bash", "5.1.8", "5.1-6ubuntu1.1", "5.2.15-2", "5.2.15", 0.1, 180, 1, "GNU Bash"},
	{"coreutils", "8.32", "8.32-4.1ubuntu1.2", "9.1-1", "8.32", 0.05, 180, 1, "GNU Coreutils"},
	{"tar", "2:1.34", "1.34+dfsg-1ubuntu0.1.22.04.2", "1.34+dfsg-1.2", "1.34", 0.1, 180, 1, "GNU tar"},
	{"zlib", "1.2.11", "1:1.2.11.dfsg-2ubuntu9.2", "1:1.2.13.dfsg-1", "1.2.13", 0.1, 180, 1, "zlib"},
	{"libxml2", "2.9.13", "2.9.13+dfsg-1ubuntu0.4", "2.9.14+dfsg-1.3", "2.10.3", 0.4, 90, 1, "libxml2"},
	{"sqlite", "3.34.1", "3.37.2-2ubuntu0.3", "3.40.1-2", "3.44.0", 0.2, 120, 0.9, "SQLite"},
	{"rsync", "3.2.3", "3.2.7-0ubuntu0.22.04.2", "3.2.7-1", "3.2.7", 0.2, 180, 0.8, "rsync"},
	{"wget", "1.21.1", "1.21.2-2ubuntu1.1", "1.21.3-1", "1.21.4", 0.1, 180, 0.8, "GNU Wget"},
	{"perl", "4:5.32.1", "5.34.0-3ubuntu1.3", "5.36.0-7", "5.36.0", 0.2, 120, 0.95, "Perl"},
	{"git", "2.43.5", "1:2.34.1-1ubuntu1.11", "1:2.39.5-0", "2.43.0", 0.3, 90, 0.6, "Git"},
	{"nss", "3.101.0", "2:3.98-0ubuntu0.22.04.2", "2:3.87.1-1", "3.101.2", 0.3, 60, 0.7, "Network Security Services"},
	{"krb5", "1.21.1", "1.19.2-2ubuntu0.4", "1.20.1-2", "1.20.1", 0.2, 120, 0.9, "MIT Kerberos"},
	{"pam", "1.5.1", "1.4.0-11ubuntu2.4", "1.5.2-6", "1.6.0", 0.1, 180, 1, "Linux-PAM"},
	{"util-linux", "2.37.4", "2.37.2-4ubuntu3.4", "2.38.1-5", "2.39.3", 0.1, 180, 1, "util-linux"},
	{"xz", "5.2.5", "5.2.5-2ubuntu1", "5.4.1-0.2", "5.4.1", 0.05, 365, 1, "XZ Utils"},
	{"tzdata", "2025a", "2025a-0ubuntu0.22.04", "2025a-0", "2025a", 0.01, 60, 1, "tzdata"},
	{"ca-certificates", "2024.2.69", "20240203~22.04.1", "20230311", "2024.2", 0.01, 90, 1, "CA certificates"},
	{"gnupg2", "2.3.3", "2.2.27-3ubuntu2.1", "2.2.40-1.1", "2.4.4", 0.1, 180, 0.9, "GnuPG"},
	{"less", "590", "590-1ubuntu0.22.04.3", "590-2.1", "643", 0.05, 365, 1, "less"},
	{"expat", "2.5.0", "2.4.7-1ubuntu0.5", "2.5.0-1", "2.6.3", 0.2, 120, 0.9, "Expat"},
	{"libssh", "0.10.4", "0.9.6-2ubuntu0.22.04.3", "0.10.6-0", "0.10.6", 0.1, 180, 0.5, "libssh"},
	{"docker", "26.1.3", "24.0.7-0ubuntu2~22.04.1", "20.10.24+dfsg1-1", "24.0.7", 0.2, 90, 0.25, "Docker Engine"},
}

// commonApps are products with few CVEs; install chances per family
// (Windows client, Windows server, Linux, macOS).
var commonApps = []struct {
	vendor, name, display string
	install               [4]float64
	rate                  float64
	days                  int
	major, minor, build   int
	win                   bool // has an Uninstall registry key
}{
	{"microsoft", "visual_c++_2015-2022_redistributable", "Microsoft Visual C++ 2015-2022 Redistributable", [4]float64{0.98, 0.95, 0, 0}, 0.05, 120, 14, 40, 33810, true},
	{"microsoft", "visual_c++_2013_redistributable", "Microsoft Visual C++ 2013 Redistributable", [4]float64{0.6, 0.5, 0, 0}, 0.02, 365, 12, 0, 40664, true},
	{"microsoft", "powershell", "PowerShell 7", [4]float64{0.25, 0.55, 0.05, 0.05}, 0.2, 60, 7, 4, 6, true},
	{"microsoft", "windows_terminal", "Windows Terminal", [4]float64{0.45, 0.1, 0, 0}, 0.02, 45, 1, 21, 3231, false},
	{"microsoft", "remote_desktop", "Remote Desktop", [4]float64{0.5, 0.05, 0, 0.2}, 0.1, 60, 1, 2, 5807, true},
	{"microsoft", "azure_cli", "Microsoft Azure CLI", [4]float64{0.1, 0.2, 0.15, 0.2}, 0.05, 30, 2, 67, 0, true},
	{"microsoft", "sql_server_management_studio", "SQL Server Management Studio", [4]float64{0.04, 0.35, 0, 0}, 0.08, 90, 20, 2, 30, true},
	{"microsoft", "system_center_configuration_manager", "Configuration Manager client", [4]float64{0.6, 0.7, 0, 0}, 0.03, 120, 5, 0, 9132, true},
	{"microsoft", "intune_management_extension", "Microsoft Intune Management Extension", [4]float64{0.7, 0.05, 0, 0}, 0.01, 30, 1, 83, 107, true},
	{"microsoft", "windows_app_sdk", "Windows App Runtime", [4]float64{0.85, 0.3, 0, 0}, 0.02, 60, 1, 6, 2411, false},
	{"microsoft", "webview2_runtime", "Microsoft Edge WebView2 Runtime", [4]float64{0.97, 0.7, 0, 0}, 0.02, 7, 131, 0, 2903, true},
	{"intel", "graphics_driver", "Intel Graphics Driver", [4]float64{0.75, 0.02, 0, 0}, 0.15, 60, 31, 0, 101, true},
	{"intel", "management_engine_components", "Intel Management Engine Components", [4]float64{0.65, 0.02, 0, 0}, 0.12, 120, 2406, 0, 5, true},
	{"realtek", "high_definition_audio_driver", "Realtek High Definition Audio Driver", [4]float64{0.6, 0, 0, 0}, 0.02, 180, 6, 0, 9600, true},
	{"dell", "command_update", "Dell Command | Update", [4]float64{0.3, 0.05, 0, 0}, 0.08, 90, 5, 4, 0, true},
	{"hp", "support_assistant", "HP Support Assistant", [4]float64{0.2, 0, 0, 0}, 0.06, 90, 9, 38, 38, true},
	{"lenovo", "vantage", "Lenovo Vantage Service", [4]float64{0.2, 0, 0, 0}, 0.05, 60, 4, 2, 14, true},
	{"cisco", "secure_client", "Cisco Secure Client", [4]float64{0.45, 0.02, 0.02, 0.4}, 0.2, 90, 5, 1, 6103, true},
	{"citrix", "workspace", "Citrix Workspace", [4]float64{0.25, 0.15, 0, 0.1}, 0.2, 60, 24, 9, 10, true},
	{"slack", "slack", "Slack", [4]float64{0.25, 0, 0.02, 0.35}, 0.05, 30, 4, 41, 105, true},
	{"cisco", "webex", "Webex", [4]float64{0.2, 0, 0, 0.2}, 0.1, 45, 44, 10, 0, true},
	{"python", "python", "Python", [4]float64{0.12, 0.18, 0, 0.3}, 0.2, 60, 3, 12, 8, true},
	{"nodejs", "node.js", "Node.js", [4]float64{0.08, 0.12, 0.05, 0.25}, 0.3, 45, 22, 11, 0, true},
	{"docker", "docker_desktop", "Docker Desktop", [4]float64{0.06, 0.03, 0, 0.2}, 0.15, 30, 4, 36, 0, true},
	{"wireshark", "wireshark", "Wireshark", [4]float64{0.03, 0.08, 0.01, 0.05}, 0.4, 60, 4, 4, 2, true},
	{"postman", "postman", "Postman", [4]float64{0.06, 0, 0, 0.15}, 0.02, 30, 11, 20, 0, true},
	{"dominik_reichl", "keepass", "KeePass Password Safe", [4]float64{0.08, 0.05, 0, 0}, 0.05, 180, 2, 57, 0, true},
	{"rarlab", "winrar", "WinRAR", [4]float64{0.1, 0.08, 0, 0}, 0.1, 180, 7, 1, 0, true},
	{"filezilla-project", "filezilla_client", "FileZilla Client", [4]float64{0.05, 0.12, 0, 0.05}, 0.1, 120, 3, 68, 1, true},
	{"winscp", "winscp", "WinSCP", [4]float64{0.05, 0.25, 0, 0}, 0.08, 120, 6, 3, 6, true},
	{"teamviewer", "teamviewer", "TeamViewer", [4]float64{0.1, 0.12, 0, 0.08}, 0.15, 60, 15, 61, 3, true},
	{"anydesk", "anydesk", "AnyDesk", [4]float64{0.04, 0.06, 0, 0.02}, 0.1, 90, 9, 0, 1, true},
	{"greenshot", "greenshot", "Greenshot", [4]float64{0.08, 0.02, 0, 0}, 0.03, 365, 1, 3, 290, true},
	{"microsoft", "sysinternals_suite", "Sysinternals Suite", [4]float64{0.02, 0.2, 0, 0}, 0.03, 120, 2025, 1, 0, false},
	{"oracle", "virtualbox", "Oracle VM VirtualBox", [4]float64{0.03, 0.02, 0.01, 0.05}, 0.6, 90, 7, 1, 4, true},
	{"splunk", "universal_forwarder", "Splunk Universal Forwarder", [4]float64{0, 0.35, 0.3, 0}, 0.1, 90, 9, 3, 2, true},
	{"qualys", "cloud_agent", "Qualys Cloud Agent", [4]float64{0.2, 0.4, 0.35, 0.2}, 0.03, 90, 6, 0, 0, true},
	{"tenable", "nessus_agent", "Nessus Agent", [4]float64{0.1, 0.3, 0.25, 0.05}, 0.05, 90, 10, 7, 3, true},
	{"crowdstrike", "falcon_sensor", "CrowdStrike Windows Sensor", [4]float64{0.05, 0.08, 0.05, 0.05}, 0.01, 30, 7, 20, 19008, true},
	{"apple", "xcode", "Xcode", [4]float64{0, 0, 0, 0.2}, 0.3, 60, 16, 2, 0, false},
	{"microsoft", "defender_for_endpoint", "Microsoft Defender for Endpoint", [4]float64{0, 0, 1, 1}, 0.02, 30, 101, 24, 92, false},
	{"gnu", "bash", "GNU Bash", [4]float64{0, 0, 0, 0.9}, 0.05, 365, 5, 2, 37, false},
	{"homebrew", "homebrew", "Homebrew", [4]float64{0, 0, 0, 0.3}, 0.02, 60, 4, 4, 9, false},
	{"iterm2", "iterm2", "iTerm2", [4]float64{0, 0, 0, 0.2}, 0.03, 90, 3, 5, 10, false},
	{"jetbrains", "intellij_idea", "IntelliJ IDEA", [4]float64{0.04, 0, 0.01, 0.12}, 0.1, 60, 2024, 3, 1, true},
	{"adobe", "creative_cloud", "Adobe Creative Cloud", [4]float64{0.05, 0, 0, 0.2}, 0.1, 60, 6, 4, 0, true},
}

// tvmLines builds the catalogue's product lines. Every figure here is a
// plausible shape for an enterprise fleet, not a measurement.
func tvmLines() []*tvmLine {
	var lines []*tvmLine
	line := func(l *tvmLine, products ...*tvmProduct) {
		l.idx = len(lines)
		if l.autoLag == 0 {
			l.autoLag = 1
		}
		if l.category == "" {
			l.category = "Application"
		}
		for i, p := range products {
			p.line, p.edition = l, i
		}
		l.products = products
		lines = append(lines, l)
	}
	all := func(f osFamily, p float64) map[osFamily]float64 { return map[osFamily]float64{f: p} }
	win := func(client, server float64) map[osFamily]float64 {
		return map[osFamily]float64{famWinClient: client, famWinServer: server}
	}

	// The Windows operating systems: one monthly line, one product per
	// edition, patched for mostly the same CVEs.
	line(&tvmLine{name: "Windows", period: 30 * day, rate: 70, maxSpan: 10, fix: fixMonthlyKB, severe: 0.55, remote: 0.45, category: "OS"},
		&tvmProduct{vendor: "microsoft", name: "windows_11", display: "Windows 11", os: true, platforms: []string{"Windows11"},
			version: winBuild(10, 26100, 2605), osVer: winBuild(10, 26100, 2605)},
		&tvmProduct{vendor: "microsoft", name: "windows_10", display: "Windows 10", os: true, platforms: []string{"Windows10"},
			version: winBuild(10, 19045, 5371), osVer: winBuild(10, 19045, 5371), eos: date(2025, 10, 14)},
		&tvmProduct{vendor: "microsoft", name: "windows_server_2025", display: "Windows Server 2025", os: true, platforms: []string{"WindowsServer2025"},
			version: winBuild(10, 26100, 2894), osVer: winBuild(10, 26100, 2894)},
		&tvmProduct{vendor: "microsoft", name: "windows_server_2022", display: "Windows Server 2022", os: true, platforms: []string{"WindowsServer2022"},
			version: winBuild(10, 20348, 2966), osVer: winBuild(10, 20348, 2966)},
		&tvmProduct{vendor: "microsoft", name: "windows_server_2019", display: "Windows Server 2019", os: true, platforms: []string{"WindowsServer2019"},
			version: winBuild(10, 17763, 6775), osVer: winBuild(10, 17763, 6775)},
		&tvmProduct{vendor: "microsoft", name: "windows_server_2016", display: "Windows Server 2016", os: true, platforms: []string{"WindowsServer2016"},
			version: winBuild(10, 14393, 7699), osVer: winBuild(10, 14393, 7699), eos: date(2027, 1, 12)},
		&tvmProduct{vendor: "microsoft", name: "windows_server_2012_r2", display: "Windows Server 2012 R2", os: true, platforms: []string{"WindowsServer2012R2"},
			version: func(n int) string { return dotted(6, 3, 9600, max(1, 22070+n*31)) }, osVer: func(n int) string { return dotted(6, 3, 9600, max(1, 22070+n*31)) },
			eos: date(2023, 10, 10)},
	)
	line(&tvmLine{name: "Microsoft Edge", period: 7 * day, rate: 2.2, maxSpan: 8, severe: 0.5, remote: 0.8, autoLag: 0.4},
		&tvmProduct{vendor: "microsoft", name: "edge_chromium-based", display: "Microsoft Edge", install: win(0.99, 0.9), version: browserVersion(131, 2903),
			disk: []string{`C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe`}, reg: []string{uninstall32 + "Microsoft Edge"}},
	)
	line(&tvmLine{name: "Google Chrome", period: 7 * day, rate: 2.6, maxSpan: 8, severe: 0.55, remote: 0.85, autoLag: 0.4},
		&tvmProduct{vendor: "google", name: "chrome", display: "Google Chrome",
			install: map[osFamily]float64{famWinClient: 0.72, famWinServer: 0.12, famMac: 0.6}, version: browserVersion(131, 6778),
			disk: []string{`C:\Program Files\Google\Chrome\Application\chrome.exe`}, reg: []string{uninstall + "Google Chrome"}},
	)
	line(&tvmLine{name: "Mozilla Firefox", period: 14 * day, rate: 3, maxSpan: 6, severe: 0.5, remote: 0.85, autoLag: 0.6},
		&tvmProduct{vendor: "mozilla", name: "firefox", display: "Mozilla Firefox",
			install: map[osFamily]float64{famWinClient: 0.25, famWinServer: 0.04, famMac: 0.3, famLinux: 0.05}, version: semverish(133, 0, 3),
			disk: []string{`C:\Program Files\Mozilla Firefox\firefox.exe`}, reg: []string{uninstall + "Mozilla Firefox (x64 en-US)"}},
	)
	line(&tvmLine{name: "Microsoft 365 Apps", period: 30 * day, rate: 8, maxSpan: 8, fix: fixMonthlyKB, severe: 0.45, remote: 0.2},
		&tvmProduct{vendor: "microsoft", name: "office", display: "Microsoft 365 Apps", install: win(0.93, 0.08),
			version: func(n int) string { return dotted(16, 0, 18227+n*30, 20162) },
			disk:    []string{`C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`}, reg: []string{uninstall + "O365ProPlusRetail - en-us"}},
		&tvmProduct{vendor: "microsoft", name: "office_for_mac", display: "Microsoft 365 for Mac", install: all(famMac, 0.8),
			version: func(n int) string { return dotted(16, 92+n, 24120731) }},
	)
	line(&tvmLine{name: ".NET", period: 30 * day, rate: 1.6, maxSpan: 8, fix: fixMonthlyKB, severe: 0.5, remote: 0.4},
		&tvmProduct{vendor: "microsoft", name: ".net_framework", display: ".NET Framework", install: win(1, 1),
			version: func(n int) string { return dotted(4, 8, 9290+n*7, 0) },
			reg:     []string{`SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full\Install`}},
		&tvmProduct{vendor: "microsoft", name: ".net", display: ".NET Runtime", install: win(0.35, 0.45),
			version: semverish(8, 0, 1), disk: []string{`C:\Program Files\dotnet\dotnet.exe`}},
	)
	line(&tvmLine{name: "Microsoft Teams", period: 30 * day, rate: 0.3, maxSpan: 4, severe: 0.4, remote: 0.6, autoLag: 0.5},
		&tvmProduct{vendor: "microsoft", name: "teams", display: "Microsoft Teams", install: map[osFamily]float64{famWinClient: 0.9, famMac: 0.7},
			version: func(n int) string { return dotted(24, 335+n*15, 3108, 3315) }},
	)
	line(&tvmLine{name: "Microsoft OneDrive", period: 21 * day, rate: 0.15, maxSpan: 4, severe: 0.3, remote: 0.3, autoLag: 0.5},
		&tvmProduct{vendor: "microsoft", name: "onedrive", display: "Microsoft OneDrive", install: map[osFamily]float64{famWinClient: 0.95, famMac: 0.6},
			version: func(n int) string { return dotted(24, 244+n*10, 1204, 3) }},
	)
	line(&tvmLine{name: "Adobe Acrobat Reader", period: 30 * day, rate: 4, maxSpan: 6, severe: 0.65, remote: 0.3},
		&tvmProduct{vendor: "adobe", name: "acrobat_reader", display: "Adobe Acrobat Reader", install: map[osFamily]float64{famWinClient: 0.55, famWinServer: 0.05, famMac: 0.3},
			version: func(n int) string { return dotted(24, 5, 20320+n*21) },
			disk:    []string{`C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe`}, reg: []string{uninstall + "{AC76BA86-1033-1033-7760-BC15014EA700}"}},
	)
	line(&tvmLine{name: "Oracle Java SE", period: 90 * day, rate: 6, maxSpan: 6, severe: 0.5, remote: 0.7},
		&tvmProduct{vendor: "oracle", name: "jre", display: "Java Runtime Environment", install: map[osFamily]float64{famWinClient: 0.15, famWinServer: 0.2, famLinux: 0.1},
			version: func(n int) string { return "1.8.0." + strconv.Itoa(max(1, 431+n*10)) },
			disk:    []string{`C:\Program Files\Java\jre-1.8\bin\java.exe`}, eos: date(2030, 12, 31)},
	)
	line(&tvmLine{name: "Zoom", period: 30 * day, rate: 0.6, maxSpan: 4, severe: 0.45, remote: 0.6},
		&tvmProduct{vendor: "zoom", name: "zoom", display: "Zoom Workplace", install: map[osFamily]float64{famWinClient: 0.3, famMac: 0.4},
			version: func(n int) string { return dotted(6, 3+n/6, floorMod(n, 6)*2, 56000+n*31) }},
	)
	line(&tvmLine{name: "7-Zip", period: 120 * day, rate: 0.6, maxSpan: 4, severe: 0.5, remote: 0.1},
		&tvmProduct{vendor: "7-zip", name: "7-zip", display: "7-Zip", install: win(0.3, 0.25),
			version: func(n int) string { return strconv.Itoa(24+n/4) + ".0" + strconv.Itoa(floorMod(n, 4)*3+2) },
			disk:    []string{`C:\Program Files\7-Zip\7z.exe`}, reg: []string{uninstall + "7-Zip"}},
	)
	line(&tvmLine{name: "Notepad++", period: 60 * day, rate: 0.3, maxSpan: 4, severe: 0.4, remote: 0.1},
		&tvmProduct{vendor: "notepad-plus-plus", name: "notepad++", display: "Notepad++", install: win(0.2, 0.3), version: semverish(8, 7, 10),
			disk: []string{`C:\Program Files\Notepad++\notepad++.exe`}, reg: []string{uninstall + "Notepad++"}},
	)
	line(&tvmLine{name: "VLC media player", period: 120 * day, rate: 0.7, maxSpan: 4, severe: 0.55, remote: 0.2},
		&tvmProduct{vendor: "videolan", name: "vlc_media_player", display: "VLC media player", install: map[osFamily]float64{famWinClient: 0.15, famMac: 0.1},
			version: semverish(3, 0, 25), disk: []string{`C:\Program Files\VideoLAN\VLC\vlc.exe`}},
	)
	line(&tvmLine{name: "Visual Studio Code", period: 30 * day, rate: 0.3, maxSpan: 4, severe: 0.45, remote: 0.3, autoLag: 0.7},
		&tvmProduct{vendor: "microsoft", name: "visual_studio_code", display: "Visual Studio Code",
			install: map[osFamily]float64{famWinClient: 0.18, famWinServer: 0.05, famMac: 0.35, famLinux: 0.03},
			version: func(n int) string { return dotted(1, 96+n, 2) }},
	)
	line(&tvmLine{name: "Git", period: 60 * day, rate: 0.6, maxSpan: 4, severe: 0.5, remote: 0.3},
		&tvmProduct{vendor: "git-scm", name: "git", display: "Git", install: map[osFamily]float64{famWinClient: 0.12, famWinServer: 0.1, famMac: 0.3},
			version: func(n int) string { return dotted(2, 47+n, 1) }, disk: []string{`C:\Program Files\Git\cmd\git.exe`}},
	)
	line(&tvmLine{name: "PuTTY", period: 180 * day, rate: 0.5, maxSpan: 3, severe: 0.5, remote: 0.5},
		&tvmProduct{vendor: "simon_tatham", name: "putty", display: "PuTTY", install: win(0.06, 0.3),
			version: func(n int) string { return "0." + strconv.Itoa(82+n) + ".0.0" }},
	)
	line(&tvmLine{name: "VMware Tools", period: 90 * day, rate: 0.6, maxSpan: 4, severe: 0.5, remote: 0.2},
		&tvmProduct{vendor: "vmware", name: "tools", display: "VMware Tools", install: win(0.02, 0.35),
			version: func(n int) string { return dotted(12, 5+n/3, floorMod(n, 3), 24276846+n*1000) },
			disk:    []string{`C:\Program Files\VMware\VMware Tools\vmtoolsd.exe`}},
	)
	line(&tvmLine{name: "Microsoft SQL Server", period: 60 * day, rate: 1.2, maxSpan: 6, fix: fixMonthlyKB, severe: 0.6, remote: 0.7},
		&tvmProduct{vendor: "microsoft", name: "sql_server_2019", display: "SQL Server 2019", install: win(0, 0), roles: []string{"sql"},
			version: func(n int) string { return dotted(15, 0, 4415+n*10, 2) }},
	)
	line(&tvmLine{name: "Microsoft Exchange Server", period: 90 * day, rate: 3, maxSpan: 5, fix: fixMonthlyKB, severe: 0.75, remote: 0.9},
		&tvmProduct{vendor: "microsoft", name: "exchange_server_2019", display: "Exchange Server 2019", install: win(0, 0), roles: []string{"exch"},
			version: func(n int) string { return dotted(15, 2, 1544+n*10, 14) }},
	)
	line(&tvmLine{name: "Apple macOS", period: 45 * day, rate: 22, maxSpan: 6, fix: fixApple, severe: 0.5, remote: 0.35, category: "OS"},
		&tvmProduct{vendor: "apple", name: "macos", display: "macOS", os: true, platforms: []string{"macOS"},
			version: func(n int) string { return dotted(15, max(0, 2+floorDiv(n, 3)), floorMod(n, 3)) },
			osVer:   func(n int) string { return dotted(15, max(0, 2+floorDiv(n, 3)), floorMod(n, 3)) }},
	)
	line(&tvmLine{name: "Apple Safari", period: 45 * day, rate: 5, maxSpan: 5, fix: fixApple, severe: 0.55, remote: 0.85},
		&tvmProduct{vendor: "apple", name: "safari", display: "Safari", install: all(famMac, 1), version: semverish(18, 2, 3)},
	)

	// The long tail: software most fleets run that rarely has a CVE. It is
	// most of an inventory and a small part of the vulnerabilities.
	for _, a := range commonApps {
		install := map[osFamily]float64{}
		for k, f := range []osFamily{famWinClient, famWinServer, famLinux, famMac} {
			if a.install[k] > 0 {
				install[f] = a.install[k]
			}
		}
		var reg []string
		if a.win {
			reg = []string{uninstall + a.display}
		}
		line(&tvmLine{name: a.display, period: time.Duration(a.days) * day, rate: a.rate, maxSpan: 3, severe: 0.4, remote: 0.3},
			&tvmProduct{vendor: a.vendor, name: a.name, display: a.display, install: install, reg: reg,
				version: func(n int) string { return dotted(a.major, max(0, a.minor+n/5), floorMod(n, 5), a.build+n*3) }})
	}

	// Linux: per distribution, one line per package, under the
	// distribution's vendor, fixed by its advisories.
	distros := []struct {
		vendor, platform, osVer string
		fix                     fixKind
		pick                    func(i int) string
		format                  func(base string, rel0 int) func(int) string
	}{
		{"red_hat", "RedHatEnterpriseLinux", "enterprise_linux_9.4", fixRHSA, func(i int) string { return linuxPackages[i].rhel }, rhelPkg},
		{"ubuntu", "Ubuntu", "ubuntu_linux_22.04", fixUSN, func(i int) string { return linuxPackages[i].ubuntu }, ubuntuPkg},
		{"debian", "Debian", "debian_linux_12", fixDSA, func(i int) string { return linuxPackages[i].debian }, debPkg},
		{"suse", "SuseLinuxEnterpriseServer", "suse_linux_enterprise_server_15_sp6", fixSUSE, func(i int) string { return linuxPackages[i].suse }, susePkg},
	}
	for _, d := range distros {
		for i, pkg := range linuxPackages {
			var roles []string
			install := pkg.install
			switch pkg.name {
			case "nginx":
				roles, install = []string{"web", "nginx", "api"}, 1
			case "postgresql":
				roles, install = []string{"db", "etl"}, 1
			}
			osVer := d.osVer
			p := &tvmProduct{vendor: d.vendor, name: pkg.name, display: pkg.display, platforms: []string{d.platform}, roles: roles,
				install: all(famLinux, install), version: d.format(d.pick(i), 20)}
			if pkg.name == "kernel" {
				p.os = true
				p.osVer = func(int) string { return osVer }
			}
			line(&tvmLine{name: pkg.display, period: time.Duration(pkg.days) * day, rate: pkg.rate, maxSpan: 6, fix: d.fix,
				severe: 0.45, remote: 0.35, category: map[bool]string{true: "OS", false: "Application"}[pkg.name == "kernel"]}, p)
		}
	}
	// Number the CVEs each line can fix in a year without collisions.
	next := 1000
	for _, l := range lines {
		steps := int(365*day/l.period) + 2
		l.cap = max(20, int(l.rate*4))
		l.cveBase = next
		next += steps * l.cap
	}
	return lines
}

// tvmFamilyOS lists, per family, the OS products (by platform).
func osProductFor(products []*tvmProduct, platform string) *tvmProduct {
	for _, p := range products {
		if !p.os {
			continue
		}
		for _, pl := range p.platforms {
			if strings.EqualFold(pl, platform) {
				return p
			}
		}
	}
	return nil
}
