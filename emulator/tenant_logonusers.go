package emulator

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The tenant's logon users: which accounts signed in to which machine, how,
// and when. Nothing of it is stored: each machine's list is a pure function
// of the tenant and the machine (its id, platform, name and times), made
// again whenever it is needed, so a 100,000-machine tenant costs no memory
// for it and every surface (GET /api/machines/{id}/logonusers,
// DeviceLogonEvents, DeviceInfo.LoggedOnUsers, the tenant's counts) tells the
// same story.

// logonWindow is how far back logons are visible: advanced hunting keeps 30
// days, and the per-machine API is served from the same window.
const logonWindow = 30 * 24 * time.Hour

// logonUser is one account's logons on one machine.
type logonUser struct {
	Name, Domain string
	SID          string // "" for Linux and macOS accounts
	LogonTypes   []string
	FirstSeen    time.Time // whole seconds
	LastSeen     time.Time
	DomainAdmin  bool
	LocalAdmin   bool
	Primary      bool // the machine's main user: logs on most days
}

// visible reports whether the user logged on within the window before now.
func (u *logonUser) visible(now time.Time) bool {
	return !u.LastSeen.Before(now.Add(-logonWindow)) && !u.FirstSeen.After(now)
}

// huntingSeed is the seed of everything hunting generates for a tenant.
func (t *Tenant) huntingSeed() uint64 { return uint64(seedFromString(t.id)) ^ 0x6c6f676f6e }

// netbiosDomain is the tenant's Active Directory domain as logons show it.
func (t *Tenant) netbiosDomain() string {
	d, _, _ := strings.Cut(t.domain, ".")
	if len(d) > 15 {
		d = d[:15]
	}
	return d
}

// domainSID is the tenant's Active Directory domain SID prefix.
func (t *Tenant) domainSID() string {
	r := rand.New(rand.NewPCG(t.huntingSeed(), 0x534944))
	return "S-1-5-21-" + strconv.FormatUint(uint64(r.Uint32()), 10) + "-" + strconv.FormatUint(uint64(r.Uint32()), 10) +
		"-" + strconv.FormatUint(uint64(r.Uint32()), 10)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// machineRand is a generator private to one machine and purpose, so that
// adding machines or tables never changes what another produces.
func (t *Tenant) machineRand(m *machine, purpose uint64) *rand.Rand {
	return rand.New(rand.NewPCG(hashString(m.ID)^purpose, t.huntingSeed()))
}

var (
	userFirstNames = []string{"alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "avery", "quinn",
		"drew", "robin", "kim", "lee", "pat", "dana", "chris", "maria", "ana", "li", "wei", "fatima", "omar", "ivan",
		"olga", "sofia", "lucas", "emma", "noah", "mia", "liam", "zoe"}
	userLastNames = []string{"morgan", "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "anderson",
		"thomas", "moore", "martin", "lee", "perez", "white", "harris", "clark", "lewis", "walker", "hall", "allen",
		"young", "king", "wright", "scott", "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell",
		"roberts", "carter", "phillips", "evans", "turner", "torres", "parker", "collins", "edwards", "stewart",
		"flores", "morris", "nguyen", "murphy", "rivera", "cook", "rogers", "chen", "kumar", "patel", "singh",
		"kowalski", "novak", "muller", "schmidt", "rossi", "dubois", "jansen", "silva", "santos", "tanaka", "sato"}
	serviceAccounts = []string{"svc-sql", "svc-backup", "svc-sccm", "svc-web", "svc-monitoring", "svc-scan"}
)

// directoryUser is the account name of the n-th user of the directory.
func directoryUser(n int) string {
	f, l := len(userFirstNames), len(userLastNames)
	name := userFirstNames[n%f] + "." + userLastNames[(n/f)%l]
	if k := n / (f * l); k > 0 {
		name += strconv.Itoa(k + 1)
	}
	return name
}

// adminAccount is the n-th of the tenant's administrator accounts; the first
// three are domain admins.
func adminAccount(n int) string { return "adm-" + directoryUser(n*7+3) }

const (
	directorySize = 1 << 16
	adminCount    = 12
	domainAdmins  = 3
)

// directory is the tenant's Active Directory domain: its NetBIOS name and
// SID prefix.
type directory struct{ domain, sid string }

func (t *Tenant) directory() directory { return directory{t.netbiosDomain(), t.domainSID()} }

func (d directory) user(name string, rid int) logonUser {
	return logonUser{Name: name, Domain: d.domain, SID: d.sid + "-" + strconv.Itoa(rid)}
}

func (d directory) admin(n int) logonUser {
	u := d.user(adminAccount(n), 1100+n)
	u.DomainAdmin, u.LocalAdmin = n < domainAdmins, true
	return u
}

func (d directory) member(n int) logonUser { return d.user(directoryUser(n), 2000+n) }

// shortName is the host part of a machine's name, its local account domain.
func shortName(m *machine) string {
	s, _, _ := strings.Cut(m.ComputerDNSName, ".")
	if s == "" {
		s = m.ID[:8]
	}
	return s
}

func machineFamily(m *machine) family {
	switch p := m.OSPlatform; {
	case strings.HasPrefix(p, "WindowsServer"):
		return winServer
	case strings.HasPrefix(p, "Windows"):
		return winClient
	case p == "macOS":
		return mac
	}
	return linux
}

// logonUsers returns every account that ever logged on to m (the window
// applies where they are served), in a stable order.
func (t *Tenant) logonUsers(m *machine) []logonUser {
	if m.OnboardingStatus != "Onboarded" || m.LastSeen.IsZero() {
		return nil
	}
	r := t.machineRand(m, 0x75736572)
	dir := t.directory()
	end := m.LastSeen.Truncate(time.Second)
	start := m.FirstSeen.Truncate(time.Second)
	if s := end.Add(-45 * 24 * time.Hour); start.Before(s) {
		start = s
	}
	if start.After(end) {
		start = end
	}
	span := end.Sub(start)
	var users []logonUser
	add := func(u logonUser, types []string, recent bool) {
		if slices.ContainsFunc(users, func(o logonUser) bool { return o.Domain == u.Domain && o.Name == u.Name }) {
			return
		}
		u.LogonTypes = types
		if recent {
			u.LastSeen = end.Add(-time.Duration(r.Int64N(int64(12*time.Hour)) + 1)).Truncate(time.Second)
		} else {
			u.LastSeen = end.Add(-time.Duration(r.Int64N(int64(span) + 1))).Truncate(time.Second)
		}
		if u.LastSeen.Before(start) {
			u.LastSeen = start
		}
		u.FirstSeen = u.LastSeen.Add(-time.Duration(r.Int64N(int64(u.LastSeen.Sub(start)) + 1))).Truncate(time.Second)
		if u.Primary && u.FirstSeen.After(start.Add(span/4)) {
			u.FirstSeen = start
		}
		users = append(users, u)
	}
	local := func(name string, rid int) logonUser {
		u := logonUser{Name: name, Domain: strings.ToLower(shortName(m))}
		if f := machineFamily(m); f == winClient || f == winServer {
			h := hashString(m.ID)
			u.SID = "S-1-5-21-" + strconv.FormatUint(h>>32, 10) + "-" + strconv.FormatUint(h&0xffffffff, 10) + "-" +
				strconv.FormatUint(hashString(m.ComputerDNSName)&0xffffffff, 10) + "-" + strconv.Itoa(rid)
		}
		return u
	}
	switch machineFamily(m) {
	case winClient:
		if strings.HasPrefix(m.ComputerDNSName, "avd-") {
			for range 2 + r.IntN(5) {
				u := dir.member(r.IntN(directorySize))
				u.Primary = true
				add(u, []string{"RemoteInteractive"}, r.IntN(2) == 0)
			}
		} else {
			u := dir.member(r.IntN(directorySize))
			u.Primary = true
			types := []string{"Interactive"}
			if r.IntN(3) == 0 {
				types = append(types, "Unlock")
			}
			if r.IntN(4) == 0 {
				types = append(types, "CachedInteractive")
			}
			add(u, types, true)
			if r.IntN(5) == 0 {
				add(dir.member(r.IntN(directorySize)), []string{"Interactive"}, false)
			}
		}
		if r.IntN(4) == 0 {
			add(dir.admin(domainAdmins+r.IntN(adminCount-domainAdmins)), []string{[]string{"RemoteInteractive", "Network"}[r.IntN(2)]}, false)
		}
		if r.IntN(50) == 0 {
			add(dir.admin(r.IntN(domainAdmins)), []string{"Interactive"}, false)
		}
		if r.IntN(20) == 0 {
			u := local("administrator", 500)
			u.LocalAdmin = true
			add(u, []string{"Interactive"}, false)
		}
	case winServer:
		for range 2 + r.IntN(4) {
			add(dir.admin(r.IntN(adminCount)), []string{"RemoteInteractive", "Network"}[:1+r.IntN(2)], r.IntN(3) == 0)
		}
		for range 1 + r.IntN(2) {
			name := serviceAccounts[r.IntN(len(serviceAccounts))]
			u := dir.user(name, 1500+slices.Index(serviceAccounts, name))
			add(u, []string{"Service", "Batch"}[:1+r.IntN(2)], true)
		}
		if role, _, _ := strings.Cut(shortName(m), "-"); role == "file" || role == "sql" || role == "web" || role == "app" {
			for range 3 + r.IntN(8) {
				add(dir.member(r.IntN(directorySize)), []string{"Network"}, false)
			}
		}
	case linux:
		u := local("root", 0)
		u.LocalAdmin = true
		add(u, []string{"Interactive"}, r.IntN(2) == 0)
		for range 1 + r.IntN(2) {
			a := local(strings.TrimPrefix(adminAccount(r.IntN(adminCount)), "adm-"), 0)
			a.LocalAdmin = r.IntN(2) == 0
			add(a, []string{"Network"}, r.IntN(2) == 0)
		}
	case mac:
		name, _, _ := strings.Cut(shortName(m), "-")
		u := local(name, 0)
		u.Primary, u.LocalAdmin = true, true
		add(u, []string{"Interactive"}, true)
	}
	return users
}

// visibleLogonUsers returns the users of m who logged on within the window.
func (t *Tenant) visibleLogonUsers(m *machine, now time.Time) []logonUser {
	all := t.logonUsers(m)
	out := all[:0]
	for _, u := range all {
		if u.visible(now) {
			out = append(out, u)
		}
	}
	return out
}

// LogonUserCounts counts, as of now, the machine-user pairs with a logon in
// the last 30 days and the distinct accounts among them: what a complete
// logon-user sync should hold.
func (t *Tenant) LogonUserCounts(now time.Time) (pairs, accounts int) {
	seen := map[string]bool{}
	for _, m := range t.selectMachines(nil) {
		for _, u := range t.visibleLogonUsers(m, now) {
			pairs++
			k := strings.ToLower(u.Domain + `\` + u.Name)
			if !seen[k] {
				seen[k] = true
				accounts++
			}
		}
	}
	return pairs, accounts
}
