package emulator

import (
	byteorder "encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// observables is what the tenant's machines have seen: files and domains
// (and the external IPs they resolve to); accounts are the logon users
// model's (tenant_logonusers.go). It is a catalogue
// made once from the tenant's seed; which machine saw what is not stored
// but decided by a hash of the machine id and the item, so it holds for
// machines added later too and costs nothing per machine.
type observables struct {
	seed        uint64
	files       []*fileInfo
	fileByHash  map[string]*fileInfo // lower-case sha1 and sha256
	domains     []*domainInfo
	domainByKey map[string]*domainInfo
	ipDomains   map[string][]*domainInfo // external IP -> domains that resolve to it
}

type fileInfo struct {
	SHA1, SHA256, MD5  string
	Name               string
	Size               int64
	FileType           opt[string]
	IsPE               bool
	Publisher, Product opt[string]
	Signer, Issuer     opt[string]
	SignerHash         opt[string]
	ValidCert          opt[bool]
	Determination      string
	DeterminationValue opt[string]
	GlobalPrevalence   int64
	GlobalFirst        time.Time
	GlobalLast         time.Time
	share              float64 // of the machines of its platform that have it; 0: none in this tenant
	platform           family
	anyPlatform        bool
}

type domainInfo struct {
	Host  string
	IPs   []string
	share float64
}

// catalogSpec is a file of the catalogue: its name, who signs it, what
// Microsoft makes of it and how common it is.
type catalogSpec struct {
	name, publisher, product, issuer string
	determination, threat            string
	platform                         family
	any                              bool
	share                            float64
	global                           int64
}

const msIssuer = "Microsoft Windows Production PCA 2011"

var catalogSpecs = []catalogSpec{
	{"msedge.exe", "Microsoft Corporation", "Microsoft Edge", "Microsoft Code Signing PCA 2011", "Clean", "", winClient, false, 0.95, 900_000_000},
	{"powershell.exe", "Microsoft Corporation", "Microsoft® Windows® Operating System", msIssuer, "Clean", "", winClient, false, 0.99, 1_200_000_000},
	{"Teams.exe", "Microsoft Corporation", "Microsoft Teams", "Microsoft Code Signing PCA 2011", "Clean", "", winClient, false, 0.7, 400_000_000},
	{"OneDrive.exe", "Microsoft Corporation", "Microsoft OneDrive", "Microsoft Code Signing PCA 2011", "Clean", "", winClient, false, 0.8, 500_000_000},
	{"chrome.exe", "Google LLC", "Google Chrome", "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1", "Clean", "", winClient, false, 0.55, 700_000_000},
	{"7z.exe", "Igor Pavlov", "7-Zip", "", "Clean", "", winClient, false, 0.15, 60_000_000},
	{"notepad++.exe", "Notepad++", "Notepad++", "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1", "Clean", "", winClient, false, 0.1, 40_000_000},
	{"putty.exe", "Simon Tatham", "PuTTY suite", "Sectigo Public Code Signing CA R36", "Clean", "", winClient, false, 0.05, 20_000_000},
	{"sqlservr.exe", "Microsoft Corporation", "Microsoft SQL Server", "Microsoft Code Signing PCA 2011", "Clean", "", winServer, false, 0.2, 15_000_000},
	{"w3wp.exe", "Microsoft Corporation", "Internet Information Services", msIssuer, "Clean", "", winServer, false, 0.25, 30_000_000},
	{"PsExec.exe", "Microsoft Corporation", "Sysinternals PsExec", "Microsoft Code Signing PCA 2011", "Unknown", "", winServer, true, 0.01, 5_000_000},
	{"AnyDesk.exe", "philandro Software GmbH", "AnyDesk", "DigiCert SHA2 Assured ID Code Signing CA", "Pua", "PUA:Win32/AnyDesk", winClient, false, 0.02, 8_000_000},
	{"mobisaver.exe", "CHENGDU YIWO Tech Development Co., Ltd.", "EaseUS MobiSaver for Android", "VeriSign Class 3 Code Signing 2010 CA", "Pua", "PUA:Win32/FusionCore", winClient, false, 0.003, 180_022},
	{"mimikatz.exe", "", "", "", "Malware", "HackTool:Win32/Mimikatz.D", winClient, true, 0.002, 25_000},
	{"invoice_2024.pdf.exe", "", "", "", "Malware", "Trojan:Win32/Wacatac.B!ml", winClient, false, 0.001, 3_000},
	{"svhost.exe", "", "", "", "Malware", "Backdoor:Win32/Bladabindi!ml", winClient, true, 0.0015, 12_000},
	{"rclone.exe", "", "rclone", "", "Unknown", "", winServer, true, 0.004, 900_000},
	{"curl", "", "", "", "Clean", "", linux, false, 0.9, 300_000_000},
	{"python3", "", "", "", "Clean", "", linux, false, 0.8, 250_000_000},
	{"kworkerds", "", "", "", "Malware", "Trojan:Linux/CoinMiner.A", linux, false, 0.003, 8_000},
	{"xmrig", "", "", "", "Malware", "Trojan:Linux/Xmrig.B", linux, false, 0.002, 40_000},
	{"Microsoft Teams.app", "Microsoft Corporation", "Microsoft Teams", "Developer ID Certification Authority", "Clean", "", mac, false, 0.7, 40_000_000},
	{"Zoom.us.app", "Zoom Video Communications, Inc.", "zoom.us", "Developer ID Certification Authority", "Clean", "", mac, false, 0.5, 30_000_000},
	// Known to Microsoft, never seen in this tenant (organisation prevalence 0).
	{"WinRAR.exe", "win.rar GmbH", "WinRAR", "GlobalSign GCC R45 EV CodeSigning CA 2020", "Clean", "", winClient, false, 0, 90_000_000},
	{"nc.exe", "", "", "", "Pua", "HackTool:Win32/NetCat", winClient, true, 0, 150_000},
}

var commonDomains = []struct {
	host  string
	share float64
}{
	{"microsoft.com", 0.99}, {"windowsupdate.com", 0.95}, {"office.com", 0.9}, {"login.microsoftonline.com", 0.97},
	{"google.com", 0.8}, {"zoom.us", 0.4}, {"amazonaws.com", 0.5}, {"github.com", 0.3}, {"slack.com", 0.2},
	{"salesforce.com", 0.2}, {"dropbox.com", 0.1}, {"pastebin.com", 0.02}, {"ngrok.io", 0.005},
	{"update-microsoft-check.com", 0.002}, {"login-microsoftonline-secure.com", 0.001}, {"cdn-dl-files.xyz", 0.001},
}

func newObservables(seed int64, p *profile) *observables {
	rng := rand.New(rand.NewPCG(uint64(seed), seedMix^0x0b5))
	o := &observables{seed: uint64(seed), fileByHash: map[string]*fileInfo{}, domainByKey: map[string]*domainInfo{}, ipDomains: map[string][]*domainInfo{}}
	hexOf := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = hexDigits[rng.IntN(16)]
		}
		return string(b)
	}
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range catalogSpecs {
		f := &fileInfo{
			SHA1: hexOf(40), SHA256: hexOf(64), MD5: hexOf(32), Name: s.name,
			Size:             int64(20_000 + rng.IntN(40_000_000)),
			IsPE:             strings.HasSuffix(s.name, ".exe"),
			Determination:    s.determination,
			GlobalPrevalence: s.global,
			share:            s.share, platform: s.platform, anyPlatform: s.any,
		}
		f.GlobalFirst = epoch.Add(-time.Duration(rng.Int64N(int64(6 * 365 * 24 * time.Hour)))).Truncate(100 * time.Nanosecond)
		f.GlobalLast = epoch.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(100 * time.Nanosecond)
		if s.threat != "" {
			f.DeterminationValue = some(s.threat)
		}
		if s.publisher != "" {
			f.Publisher, f.Signer = some(s.publisher), some(s.publisher)
			f.Product = some(s.product)
			if s.issuer != "" {
				f.Issuer, f.SignerHash, f.ValidCert = some(s.issuer), some(hexOf(40)), some(true)
			}
			f.FileType = some("APP")
		}
		o.files = append(o.files, f)
		o.fileByHash[f.SHA1], o.fileByHash[f.SHA256] = f, f
	}
	hosts := commonDomains
	own := []struct {
		host  string
		share float64
	}{{strings.TrimPrefix(p.adDomain, "corp."), 0.9}, {p.adDomain, 0.85}}
	for _, d := range append(own, hosts...) {
		di := &domainInfo{Host: d.host, share: d.share}
		for range 1 + rng.IntN(2) {
			ip := publicIPv4(rng)
			di.IPs = append(di.IPs, ip)
			o.ipDomains[ip] = append(o.ipDomains[ip], di)
		}
		o.domains = append(o.domains, di)
		o.domainByKey[d.host] = di
	}
	return o
}

// hit decides whether machine id has seen item key, for a share of machines.
func (o *observables) hit(id, key string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	byteorder.LittleEndian.PutUint64(b[:], o.seed)
	h.Write(b[:])
	h.Write([]byte(strings.ToLower(id)))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return float64(h.Sum64()%1_000_000) < share*1_000_000
}

func familyOf(m *machine) family {
	switch {
	case strings.HasPrefix(m.OSPlatform, "WindowsServer"):
		return winServer
	case strings.HasPrefix(m.OSPlatform, "Windows"):
		return winClient
	case m.OSPlatform == "macOS":
		return mac
	}
	return linux
}

func (o *observables) hasFile(m *machine, f *fileInfo) bool {
	fam := familyOf(m)
	if f.platform != fam && !(f.anyPlatform && (fam == winClient || fam == winServer)) {
		return false
	}
	return o.hit(m.ID, f.SHA1, f.share)
}

func (o *observables) contacted(m *machine, d *domainInfo) bool {
	return m.OnboardingStatus == "Onboarded" && o.hit(m.ID, d.Host, d.share)
}

// prevalence is how many machines saw something within a look-back window,
// and when the first and last of them were seen.
type prevalence struct {
	count       int
	first, last time.Time
}

func (p *prevalence) add(m *machine, since, now time.Time) {
	if m.LastSeen.Before(since) {
		return
	}
	first := m.FirstSeen
	if first.Before(since) {
		first = since
	}
	last := m.LastSeen
	if last.After(now) {
		last = now
	}
	if p.count == 0 || first.Before(p.first) {
		p.first = first
	}
	if p.count == 0 || last.After(p.last) {
		p.last = last
	}
	p.count++
}

// ipSeenBy reports whether machine m used or contacted ip.
func (o *observables) ipSeenBy(m *machine, ip netip.Addr) bool {
	if m.LastIPAddress.OK && sameIP(m.LastIPAddress.V, ip) || m.LastExternalIPAddress.OK && sameIP(m.LastExternalIPAddress.V, ip) {
		return true
	}
	if slices.ContainsFunc(m.IPAddresses, func(a ipAddress) bool { return sameIP(a.IPAddress, ip) }) {
		return !ip.IsLoopback() && !ip.IsLinkLocalUnicast()
	}
	for _, d := range o.ipDomains[ip.String()] {
		if o.contacted(m, d) {
			return true
		}
	}
	return false
}

// CatalogFile is a file of the tenant's catalogue, for tests and demos that
// need a hash the emulator knows.
type CatalogFile struct {
	Name, SHA1, SHA256, MD5 string
	Determination           string // Clean, Unknown, Pua, Malware
	InTenant                bool   // some machine has it
}

// CatalogFiles lists the files the emulated tenant knows.
func (t *Tenant) CatalogFiles() []CatalogFile {
	var out []CatalogFile
	for _, f := range t.response().catalog.files {
		out = append(out, CatalogFile{Name: f.Name, SHA1: f.SHA1, SHA256: f.SHA256, MD5: f.MD5, Determination: f.Determination, InTenant: f.share > 0})
	}
	return out
}

// CatalogDomains lists the domains the tenant's machines contact.
func (t *Tenant) CatalogDomains() []string {
	var out []string
	for _, d := range t.response().catalog.domains {
		out = append(out, d.Host)
	}
	return out
}

// LogonUsers returns the account names that logged on to a machine in the
// 30 days before now, as GET /api/machines/{id}/logonusers lists them (nil
// for an unknown machine).
func (t *Tenant) LogonUsers(machineKey string, now time.Time) []string {
	m := t.findMachine(machineKey)
	if m == nil {
		return nil
	}
	var out []string
	for _, u := range t.visibleLogonUsers(m, now) {
		out = append(out, u.Name)
	}
	return out
}
