package emulator

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// GenerateOptions says what synthetic tenant to make.
type GenerateOptions struct {
	Seed     int64
	Machines int
	Alerts   int       // alerts of the last 30 days, on the machines (tenant_alerts.go)
	Now      time.Time // machines are seen relative to it; zero means time.Now()
	TenantID string    // "" derives one from Seed
	// VulnsPerMachine is the average number of vulnerability rows per
	// machine in the TVM data (0: 50).
	VulnsPerMachine float64
}

// seedMix is the second PCG word ("mdebridg"), so that seeds 0, 1, 2 are not
// the generator's trivial states.
const seedMix = 0x6d64656272696467

// Generate makes a tenant with opts.Machines realistic machines. The same
// Seed and Now always give the same tenant, byte for byte.
func Generate(opts GenerateOptions) *Tenant {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), seedMix))
	id := strings.ToLower(opts.TenantID)
	if id == "" {
		id = randomGUID(rng)
	}
	p := newProfile(opts.Seed)
	t := newTenant(id, p.tenantDomain, p.orgDisplayName, p, now)
	t.tvmState.perMachine, t.tvmState.epoch = opts.VulnsPerMachine, now
	g := &generator{rng: rng, p: p, now: now, t: t}
	t.machines = make([]*machine, 0, max(0, opts.Machines))
	for range opts.Machines {
		t.appendLocked(g.machine())
	}
	t.generateAlerts(opts.Alerts, opts.Seed, now)
	return t
}

// profile is what a tenant's machines have in common: the organisation's
// names, sites, device groups, tags and Azure subscriptions.
type profile struct {
	orgDisplayName string
	tenantDomain   string
	short          string // naming prefix, e.g. "cts"
	adDomain       string
	linuxDomain    string
	altDomains     []string
	sites          []site
	groups         []rbacGroup
	tags           []string
	subscriptions  []subscription
	gcpProject     string
}

type site struct {
	octet byte   // the site's network is 10.octet.0.0/16
	v6    uint16 // the site's 2a01:110:v6::/48
	nat   []string
}

type family int

const (
	winClient family = iota
	winServer
	linux
	mac
)

type rbacGroup struct {
	id     int64
	name   string
	family family
	weight int // share among the groups of its family
	tier0  bool
}

type subscription struct {
	id     string
	groups []string
	vnet   string // the internal.cloudapp.net label of its VMs
}

var organisations = []struct{ display, name, short string }{
	{"Contoso Ltd", "contoso", "cts"},
	{"Fabrikam, Inc.", "fabrikam", "fab"},
	{"Northwind Traders", "northwindtraders", "nwt"},
	{"Woodgrove Bank", "woodgrovebank", "wgb"},
	{"Tailspin Toys", "tailspintoys", "tst"},
	{"Adventure Works Cycles", "adventureworks", "adw"},
	{"Litware, Inc.", "litware", "ltw"},
	{"Proseware, Inc.", "proseware", "psw"},
	{"Wingtip Toys", "wingtiptoys", "wtt"},
	{"Fourth Coffee", "fourthcoffee", "fcf"},
	{"Alpine Ski House", "alpineskihouse", "ash"},
	{"Relecloud", "relecloud", "rlc"},
}

var groupNames = []rbacGroup{
	{name: "Workstations", family: winClient, weight: 75},
	{name: "Executive Devices", family: winClient, weight: 15},
	{name: "Kiosks", family: winClient, weight: 10},
	{name: "Tier 0 Servers", family: winServer, weight: 10, tier0: true},
	{name: "Servers - Production", family: winServer, weight: 60},
	{name: "Servers - Non-Production", family: winServer, weight: 30},
	{name: "Linux Servers", family: linux, weight: 1},
	{name: "macOS Devices", family: mac, weight: 1},
}

var tagPool = []string{
	"VIP", "Finance", "HR", "PCI", "Production", "Test", "Kiosk", "Patch-Ring-1", "Patch-Ring-2",
	"Remote", "DMZ", "Legacy", "Critical", "Engineering", "Lab", "Contractor",
}

var resourceGroupNames = []string{"rg-prod-app", "rg-prod-data", "rg-dev", "rg-shared-infra", "rg-avd", "rg-web", "rg-identity"}

func newProfile(seed int64) *profile {
	rng := rand.New(rand.NewPCG(uint64(seed), seedMix^0xffff))
	org := organisations[rng.IntN(len(organisations))]
	p := &profile{
		orgDisplayName: org.display,
		tenantDomain:   org.name + ".onmicrosoft.com",
		short:          org.short,
		adDomain:       "corp." + org.name + ".com",
		linuxDomain:    "prod." + org.name + ".com",
		altDomains:     []string{"dmz." + org.name + ".com", "lab." + org.name + ".com", "eu.corp." + org.name + ".com"},
		gcpProject:     org.name + "-prod-" + strconv.Itoa(100000+rng.IntN(900000)),
	}
	octets := rng.Perm(240)
	for i := range 3 + rng.IntN(6) {
		s := site{octet: byte(octets[i] + 1), v6: uint16(rng.IntN(0xffff))}
		for range 2 {
			s.nat = append(s.nat, publicIPv4(rng))
		}
		p.sites = append(p.sites, s)
	}
	ids := rng.Perm(998)
	for i, g := range groupNames {
		if i > 2 && rng.IntN(4) == 0 {
			continue // not every organisation has every group
		}
		g.id = int64(ids[i] + 1)
		p.groups = append(p.groups, g)
	}
	p.tags = tagPool
	for range 2 + rng.IntN(3) {
		sub := subscription{id: randomGUID(rng), vnet: randomLower(rng, 26)}
		for _, i := range rng.Perm(len(resourceGroupNames))[:3] {
			sub.groups = append(sub.groups, resourceGroupNames[i])
		}
		p.subscriptions = append(p.subscriptions, sub)
	}
	return p
}

type osSpec struct {
	platform, version string
	build             int64 // 0: null
	family            family
	weight            int
}

// osSpecs is the OS mix of a typical enterprise tenant. Linux machines carry
// their distribution as osPlatform and its version in "version", as the live
// service does (osPlatform "Ubuntu", version "20.4"; "RedHatEnterpriseLinux",
// "9.5"), and osVersion stays null as in every live capture.
var osSpecs = []osSpec{
	{"Windows11", "24H2", 26100, winClient, 14},
	{"Windows11", "23H2", 22631, winClient, 14},
	{"Windows11", "22H2", 22621, winClient, 6},
	{"Windows10", "22H2", 19045, winClient, 22},
	{"Windows10", "21H2", 19044, winClient, 6},
	{"WindowsServer2025", "24H2", 26100, winServer, 2},
	{"WindowsServer2022", "21H2", 20348, winServer, 6},
	{"WindowsServer2019", "1809", 17763, winServer, 6},
	{"WindowsServer2016", "1607", 14393, winServer, 3},
	{"WindowsServer2012R2", "6.3", 9600, winServer, 1},
	{"Ubuntu", "22.4", 0, linux, 3},
	{"Ubuntu", "24.4", 0, linux, 2},
	{"Ubuntu", "20.4", 0, linux, 1},
	{"RedHatEnterpriseLinux", "9.5", 0, linux, 1},
	{"RedHatEnterpriseLinux", "9.3", 0, linux, 1},
	{"RedHatEnterpriseLinux", "8.10", 0, linux, 1},
	{"Debian", "12", 0, linux, 1},
	{"SuseLinuxEnterpriseServer", "15.6", 0, linux, 1},
	{"macOS", "15.1", 0, mac, 3},
	{"macOS", "14.7", 0, mac, 2},
}

type weighted[T any] struct {
	v T
	w int
}

func pick[T any](rng *rand.Rand, choices []weighted[T]) T {
	total := 0
	for _, c := range choices {
		total += c.w
	}
	n := rng.IntN(total)
	for _, c := range choices {
		if n < c.w {
			return c.v
		}
		n -= c.w
	}
	return choices[len(choices)-1].v
}

var (
	healthByFamily = map[family][]weighted[string]{
		winClient: {{"Active", 72}, {"Inactive", 18}, {"ImpairedCommunication", 4}, {"NoSensorData", 3}, {"NoSensorDataImpairedCommunication", 1}, {"Unknown", 2}},
		winServer: {{"Active", 85}, {"Inactive", 8}, {"ImpairedCommunication", 3}, {"NoSensorData", 2}, {"NoSensorDataImpairedCommunication", 1}, {"Unknown", 1}},
		linux:     {{"Active", 75}, {"Inactive", 18}, {"ImpairedCommunication", 3}, {"NoSensorData", 2}, {"Unknown", 2}},
		mac:       {{"Active", 70}, {"Inactive", 22}, {"ImpairedCommunication", 4}, {"NoSensorData", 2}, {"Unknown", 2}},
	}
	onboardingWeights = []weighted[string]{{"Onboarded", 950}, {"CanBeOnboarded", 40}, {"InsufficientInfo", 6}, {"Unsupported", 4}}
	riskWeights       = []weighted[string]{{"None", 35}, {"Informational", 10}, {"Low", 25}, {"Medium", 20}, {"High", 10}}
	exposureWeights   = []weighted[string]{{"None", 5}, {"Low", 35}, {"Medium", 45}, {"High", 15}}
	valueWeights      = []weighted[string]{{"Normal", 90}, {"High", 7}, {"Low", 3}}
	avWeights         = []weighted[string]{{"Updated", 82}, {"NotUpdated", 10}, {"Disabled", 3}, {"Unknown", 5}}
	macAVWeights      = []weighted[string]{{"Updated", 70}, {"NotUpdated", 20}, {"Unknown", 10}}
	winAgentPlatforms = []string{"8560", "8700", "8735", "8760", "8790", "8805"}
	linuxAgents       = []string{"30.124082.0.0", "30.124092.2.0", "30.124112.1.0", "30.125012.3.0", "30.125022.1.0"}
	macAgents         = []string{"101.24092.0004", "101.24112.0007", "101.25012.0003"}
	serverRoles       = []string{"sql", "web", "app", "dc", "file", "print", "exch", "sccm", "rds", "ca", "adfs", "bkp", "hv", "iis", "mq"}
	linuxRoles        = []string{"web", "api", "db", "k8s-node", "kafka", "redis", "nginx", "jenkins", "elk", "bastion", "etl"}
	environments      = []string{"prd", "prd", "prd", "dev", "tst", "uat"}
	firstNames        = []string{"alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "avery", "quinn", "drew", "robin", "kim", "lee", "pat", "dana"}
	ouis              = []string{"8CEC4B", "3C7C3F", "147DDA", "F8B156", "C8D9D2", "A4BB6D", "D4BED9", "482AE3", "000C29", "005056", "00155D"}
	azureOUIs         = []string{"000D3A", "6045BD", "002248", "7C1E52"}
	exclusionReasons  = []string{"InactiveDevice", "Duplicate", "Other"}
	gcpZones          = []string{"us-central1-a", "us-east1-b", "europe-west1-c"}
)

type generator struct {
	rng        *rand.Rand
	p          *profile
	now        time.Time
	t          *Tenant // for uniqueness of ids and names
	lastServer string  // short host name of the last server, for the odd duplicate
	osChoices  []weighted[osSpec]
}

// machine makes one machine whose id and computer name are new to the tenant.
func (g *generator) machine() *machine {
	r := g.rng
	if g.osChoices == nil {
		for _, s := range osSpecs {
			g.osChoices = append(g.osChoices, weighted[osSpec]{s, s.weight})
		}
	}
	spec := pick(r, g.osChoices)
	m := &machine{
		ID:               g.uniqueID(),
		OSPlatform:       spec.platform,
		Version:          some(spec.version),
		OnboardingStatus: pick(r, onboardingWeights),
		MachineTags:      []string{},
	}
	onboarded := m.OnboardingStatus == "Onboarded"
	if spec.build != 0 {
		m.OSBuild = some(spec.build)
	}

	// Health and the times it implies.
	m.HealthStatus = pick(r, healthByFamily[spec.family])
	if !onboarded {
		m.HealthStatus = pick(r, []weighted[string]{{"Active", 5}, {"Inactive", 3}, {"Unknown", 2}})
	}
	var ago time.Duration
	switch m.HealthStatus {
	case "Active":
		ago = g.duration(0, 20*time.Hour)
	case "Inactive":
		ago = g.duration(7*24*time.Hour, 120*24*time.Hour)
	case "Unknown":
		ago = g.duration(24*time.Hour, 30*24*time.Hour)
	default:
		ago = g.duration(time.Hour, 6*24*time.Hour)
	}
	m.LastSeen = g.now.Add(-ago).Truncate(100 * time.Nanosecond)
	m.FirstSeen = m.LastSeen.Add(-g.duration(0, 900*24*time.Hour)).Truncate(100 * time.Nanosecond)

	// Where it runs: Azure VM, Azure Arc (on another cloud), or on premises.
	cloud := "onprem"
	switch spec.family {
	case winServer:
		cloud = pick(r, []weighted[string]{{"azure", 40}, {"arc", 5}, {"onprem", 55}})
	case linux:
		cloud = pick(r, []weighted[string]{{"azure", 40}, {"gcp", 15}, {"onprem", 45}})
	case winClient:
		cloud = pick(r, []weighted[string]{{"azure", 4}, {"onprem", 96}})
	}
	short, fqdn := g.name(spec.family, cloud)
	m.ComputerDNSName = fqdn
	var sub subscription
	if cloud != "onprem" {
		sub = g.p.subscriptions[r.IntN(len(g.p.subscriptions))]
		rg := sub.groups[r.IntN(len(sub.groups))]
		provider := "Microsoft.Compute/virtualMachines/" + short
		if cloud == "arc" || cloud == "gcp" {
			provider = "Microsoft.HybridCompute/machines/" + short
			if cloud == "gcp" {
				provider += "-" + strconv.FormatInt(1e18+r.Int64N(8e18), 10)
			}
		}
		m.VMMetadata = &vmMetadata{
			VMID:           some(randomGUID(r)),
			CloudProvider:  some("Azure"),
			ResourceID:     some("/subscriptions/" + sub.id + "/resourceGroups/" + rg + "/providers/" + provider),
			SubscriptionID: some(sub.id),
		}
	}

	g.network(m, spec.family, cloud, onboarded)

	// Agent and management.
	m.OSProcessor, m.OSArchitecture = some("x64"), some("64-bit")
	switch spec.family {
	case winClient, winServer:
		m.AgentVersion = some("10." + winAgentPlatforms[r.IntN(len(winAgentPlatforms))] + "." + strconv.FormatInt(spec.build, 10) + "." + strconv.Itoa(1000+r.IntN(5600)))
		m.DefenderAVStatus = some(pick(r, avWeights))
	case linux:
		m.AgentVersion = some(linuxAgents[r.IntN(len(linuxAgents))])
		m.DefenderAVStatus = some("NotSupported")
	case mac:
		m.AgentVersion = some(macAgents[r.IntN(len(macAgents))])
		m.DefenderAVStatus = some(pick(r, macAVWeights))
	}
	switch spec.family {
	case winClient:
		by := pick(r, []weighted[string]{{"Intune", 70}, {"MicrosoftDefenderForEndpoint", 10}, {"Unknown", 20}})
		m.ManagedBy, m.ManagedByStatus = some(by), some("Unknown")
		if by == "MicrosoftDefenderForEndpoint" {
			m.ManagedByStatus = some("Success")
		}
	case mac:
		m.ManagedBy, m.ManagedByStatus = some(pick(r, []weighted[string]{{"Intune", 60}, {"Unknown", 40}})), some("Unknown")
	default:
		m.ManagedBy, m.ManagedByStatus = some("Unknown"), some("Unknown")
		if r.IntN(10) < 6 {
			m.ManagedBy, m.ManagedByStatus = some("MicrosoftDefenderForEndpoint"), some("Success")
		}
	}

	// Entra ID join.
	switch spec.family {
	case winClient:
		cloudNative := !strings.Contains(fqdn, ".")
		joined := cloudNative || r.IntN(10) < 6
		m.IsAADJoined = some(joined)
		if joined && r.IntN(10) < 9 {
			m.AADDeviceID = some(randomGUID(r))
		}
	case linux:
		if r.IntN(2) == 0 {
			m.IsAADJoined = some(false)
		}
	default:
		m.IsAADJoined = some(false)
	}

	// Device group, value, tags, scores.
	m.RBACGroupID = 0
	if r.IntN(10) >= 3 {
		var candidates []weighted[rbacGroup]
		for _, grp := range g.p.groups {
			if grp.family == spec.family {
				candidates = append(candidates, weighted[rbacGroup]{grp, grp.weight})
			}
		}
		if len(candidates) > 0 {
			grp := pick(r, candidates)
			m.RBACGroupID, m.RBACGroupName = grp.id, some(grp.name)
			if grp.tier0 {
				m.DeviceValue = some("High")
			}
		}
	}
	if !m.DeviceValue.OK {
		m.DeviceValue = some(pick(r, valueWeights))
	}
	if r.IntN(100) >= 55 {
		for _, i := range r.Perm(len(g.p.tags))[:1+r.IntN(3)] {
			m.MachineTags = append(m.MachineTags, g.p.tags[i])
		}
	}
	m.RiskScore = some(pick(r, riskWeights))
	m.ExposureLevel = some(pick(r, exposureWeights))
	if r.IntN(200) == 0 {
		m.IsPotentialDuplication = true
	}
	if r.IntN(100) == 0 {
		m.IsExcluded = true
		m.ExclusionReason = some(exclusionReasons[r.IntN(len(exclusionReasons))])
	}

	if !onboarded {
		// Discovered, not onboarded: what the live service shows for such a
		// device (peers/graph-microsoft-endpoint-defender/GET_api_machines_top1_skip0.json).
		m.AgentVersion = some("1.1500")
		m.OSProcessor, m.OSArchitecture = opt[string]{}, opt[string]{}
		m.OSBuild = opt[int64]{}
		m.DefenderAVStatus = some("Unknown")
		m.ManagedBy, m.ManagedByStatus = some("Unknown"), some("Unknown")
		m.RiskScore, m.ExposureLevel = some("None"), some(pick(r, []weighted[string]{{"None", 1}, {"Low", 2}}))
		m.IsAADJoined, m.AADDeviceID = some(false), opt[string]{}
		m.LastExternalIPAddress = opt[string]{}
	}
	return m
}

func (g *generator) duration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)+1))
}

func (g *generator) uniqueID() string {
	for {
		var b [24]byte
		for i := 0; i < 24; i += 8 {
			v := g.rng.Uint64()
			for k := range 8 {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		id := make([]byte, 40)
		for i := range 20 {
			id[2*i] = hexDigits[b[i]>>4]
			id[2*i+1] = hexDigits[b[i]&0xf]
		}
		s := string(id)
		if _, taken := g.t.byID[s]; !taken {
			return s
		}
	}
}

// name returns a new short host name and computer DNS name for the machine.
func (g *generator) name(f family, cloud string) (short, fqdn string) {
	r := g.rng
	for attempt := 0; ; attempt++ {
		switch f {
		case winClient:
			switch {
			case cloud == "azure":
				short = "avd-" + g.p.short + "-" + pad(r.IntN(100000), 5)
				fqdn = short + "." + g.p.adDomain
			case r.IntN(100) < 35:
				short = "desktop-" + randomLower(r, 7)
				fqdn = short
			case r.IntN(100) < 15:
				short = "laptop-" + randomLower(r, 8)
				fqdn = short
			default:
				short = g.p.short + "-" + []string{"ws", "lt"}[r.IntN(2)] + pad(r.IntN(100000), 5)
				fqdn = short + "." + g.p.adDomain
			}
		case winServer:
			short = serverRoles[r.IntN(len(serverRoles))] + "-" + environments[r.IntN(len(environments))] + "-" + pad(r.IntN(10000), 4)
			domain := g.p.adDomain
			if g.lastServer != "" && r.IntN(200) == 0 {
				// The same short name in another domain: a name is not an id.
				short = g.lastServer
				domain = g.p.altDomains[r.IntN(len(g.p.altDomains))]
			}
			fqdn = short + "." + domain
		case linux:
			short = linuxRoles[r.IntN(len(linuxRoles))] + "-" + environments[r.IntN(len(environments))] + "-" + pad(r.IntN(10000), 4)
			switch cloud {
			case "azure":
				sub := g.p.subscriptions[r.IntN(len(g.p.subscriptions))]
				fqdn = short + "." + sub.vnet + ".bx.internal.cloudapp.net"
			case "gcp":
				short = "instance-" + strconv.Itoa(1+r.IntN(99999))
				fqdn = short + "." + gcpZones[r.IntN(len(gcpZones))] + ".c." + g.p.gcpProject + ".internal"
			default:
				domain := g.p.linuxDomain
				if g.lastServer != "" && r.IntN(200) == 0 {
					short = g.lastServer
					domain = g.p.altDomains[r.IntN(len(g.p.altDomains))]
				}
				fqdn = short + "." + domain
			}
		case mac:
			short = firstNames[r.IntN(len(firstNames))] + string(rune('a'+r.IntN(26))) + "-mbp" + pad(r.IntN(1000), 3)
			fqdn = short
		}
		if attempt > 20 {
			// A crowded naming scheme: make the name unique, keep its look.
			extra := "-" + randomLower(r, 4)
			if head, rest, ok := strings.Cut(fqdn, "."); ok {
				short, fqdn = head+extra, head+extra+"."+rest
			} else {
				short, fqdn = fqdn+extra, fqdn+extra
			}
		}
		if _, taken := g.t.byName[fqdn]; !taken {
			if f == winServer || (f == linux && cloud == "onprem") {
				g.lastServer = short
			}
			return short, fqdn
		}
	}
}

// network fills ipAddresses, lastIpAddress and lastExternalIpAddress the way
// the live service reports NICs: Windows with typed adapters and a loopback
// whose MAC is null, Linux with type "Other" and an all-zero loopback MAC.
func (g *generator) network(m *machine, f family, cloud string, onboarded bool) {
	r := g.rng
	s := g.p.sites[r.IntN(len(g.p.sites))]
	var ip4 string
	oui := ouis[r.IntN(len(ouis))]
	switch cloud {
	case "azure":
		ip4 = "10." + strconv.Itoa(200+r.IntN(50)) + "." + strconv.Itoa(r.IntN(16)) + "." + strconv.Itoa(4+r.IntN(250))
		oui = azureOUIs[r.IntN(len(azureOUIs))]
		m.LastExternalIPAddress = some(azureIPv4(r))
	case "gcp":
		ip4 = "10.128." + strconv.Itoa(r.IntN(16)) + "." + strconv.Itoa(2+r.IntN(252))
		oui = "42010A"
		m.LastExternalIPAddress = some(strconv.Itoa(34+r.IntN(2)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254)))
	default:
		ip4 = "10." + strconv.Itoa(int(s.octet)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
		m.LastExternalIPAddress = some(s.nat[r.IntN(len(s.nat))])
	}
	m.LastIPAddress = some(ip4)
	mac := macAddress(r, oui)
	if !onboarded {
		m.IPAddresses = []ipAddress{{IPAddress: ip4, MACAddress: some(mac), OperationalStatus: "Unknown"}}
		return
	}
	var ips []ipAddress
	switch f {
	case winClient, winServer:
		typ := "Ethernet"
		if strings.Contains(m.ComputerDNSName, "-lt") || strings.HasPrefix(m.ComputerDNSName, "laptop-") {
			typ = "Wireless80211"
		}
		nic := func(ip string) ipAddress {
			return ipAddress{IPAddress: ip, MACAddress: some(mac), Type: some(typ), OperationalStatus: "Up"}
		}
		ips = append(ips, nic(ip4))
		if cloud == "onprem" && r.IntN(10) < 3 {
			ips = append(ips, nic(ipv6(r, [8]uint16{0x2a01, 0x110, s.v6, uint16(r.IntN(0x10000))})))
		}
		ips = append(ips, nic(ipv6(r, [8]uint16{0xfe80})))
		if r.IntN(10) < 2 {
			down := macAddress(r, oui)
			apipa := "169.254." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
			ips = append(ips,
				ipAddress{IPAddress: apipa, MACAddress: some(down), Type: some("Ethernet"), OperationalStatus: "Down"},
				ipAddress{IPAddress: ipv6(r, [8]uint16{0xfe80}), MACAddress: some(down), Type: some("Ethernet"), OperationalStatus: "Down"})
		}
		ips = append(ips,
			ipAddress{IPAddress: "127.0.0.1", Type: some("SoftwareLoopback"), OperationalStatus: "Up"},
			ipAddress{IPAddress: "::1", Type: some("SoftwareLoopback"), OperationalStatus: "Up"})
	default:
		other := func(ip, mac string) ipAddress {
			return ipAddress{IPAddress: ip, MACAddress: some(mac), Type: some("Other"), OperationalStatus: "Up"}
		}
		ips = append(ips, other(ip4, mac), other(eui64LinkLocal(mac), mac))
		if f == linux && r.IntN(5) == 0 {
			docker := "0242" + macAddress(r, "")[4:]
			ips = append(ips, other("172.17.0.1", docker), other(eui64LinkLocal(docker), docker))
		}
		ips = append(ips, other("127.0.0.1", "000000000000"), other("::1", "000000000000"))
	}
	m.IPAddresses = ips
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomLower(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = lowerAlnum[r.IntN(len(lowerAlnum))]
	}
	return string(b)
}

func randomGUID(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return guidFromBytes(b[:])
}

// macAddress returns 12 upper-case hex digits starting with oui.
func macAddress(r *rand.Rand, oui string) string {
	const upper = "0123456789ABCDEF"
	b := []byte(oui)
	for len(b) < 12 {
		b = append(b, upper[r.IntN(16)])
	}
	return string(b)
}

func publicIPv4(r *rand.Rand) string {
	firsts := []int{20, 40, 52, 13, 104, 131, 167, 174, 81, 216}
	return strconv.Itoa(firsts[r.IntN(len(firsts))]) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
}

func azureIPv4(r *rand.Rand) string {
	firsts := []int{20, 52, 40, 13, 172}
	f := firsts[r.IntN(len(firsts))]
	second := r.IntN(256)
	if f == 172 {
		second = 200 + r.IntN(20)
	}
	return strconv.Itoa(f) + "." + strconv.Itoa(second) + "." + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
}

// ipv6 fills the groups after the given prefix groups with random values.
func ipv6(r *rand.Rand, prefix [8]uint16) string {
	n := 0
	for n < 8 && prefix[n] != 0 {
		n++
	}
	if prefix[0] == 0xfe80 {
		n = 4
	}
	var b [16]byte
	for i := range 8 {
		v := prefix[i]
		if i >= n {
			v = uint16(r.IntN(0x10000))
		}
		b[2*i], b[2*i+1] = byte(v>>8), byte(v)
	}
	return netip.AddrFrom16(b).String()
}

// eui64LinkLocal is the link-local address Linux derives from a MAC.
func eui64LinkLocal(mac string) string {
	var hw [6]byte
	for i := range 6 {
		v, _ := strconv.ParseUint(mac[2*i:2*i+2], 16, 8)
		hw[i] = byte(v)
	}
	b := [16]byte{0: 0xfe, 1: 0x80}
	b[8], b[9], b[10] = hw[0]^0x02, hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b).String()
}
