package emulator

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The TVM model: what software each machine runs and which CVEs that
// software has, as a pure function of the tenant's seed, the machine and
// the time. Nothing per machine is stored, so a 100,000-machine tenant costs
// no memory for its five million vulnerability rows, and any moment in the
// past can be recomputed exactly, which is what lets the delta API answer
// "what changed since" for any window.
//
// Over time:
//   - each product line releases a version every period (Patch Tuesday for
//     Windows, weekly for browsers), and each release fixes a batch of CVEs
//     that affect the versions before it;
//   - CVEs are published around their fix's release (a few days early for
//     zero-days, some weeks late for others), which is when machines running
//     an affected version gain a row ("New" in the delta API);
//   - each machine installs each release after a lag of its own (a
//     well-managed laptop in days, a laggard server in months, a few machines
//     never again), which is when its rows for the CVEs that release fixes go
//     ("Fixed");
//   - exploits appear for some CVEs after they are published, changing the
//     exploitability level of every row of that CVE ("Updated").

// tvmCVE is one entry of the CVE catalogue.
type tvmCVE struct {
	id       string
	line     *tvmLine
	fixStep  int    // the release that fixes it
	span     int    // it affects releases fixStep-span .. fixStep-1
	editions uint64 // products of the line it affects (bit = tvmProduct.edition)
	ordinal  int    // index in the catalogue

	published time.Time
	updated   time.Time // catalogue updatedOn before any exploit news
	public    time.Time // exploit published (zero: never)
	verified  time.Time // exploit verified
	inKit     time.Time // exploit in a kit

	cvss           float64
	vector         string
	severity       string
	exploitTypes   []string
	exploitURI     string
	supportability string
	epss           opt[float64]
	description    string
	kb             string // fixing KB number (Microsoft lines), "" otherwise
}

// exploitLevel is the exploitabilityLevel of the CVE's rows at t.
func (c *tvmCVE) exploitLevel(t time.Time) string {
	switch {
	case !c.inKit.IsZero() && !c.inKit.After(t):
		return "ExploitIsInKit"
	case !c.verified.IsZero() && !c.verified.After(t):
		return "ExploitIsVerified"
	case !c.public.IsZero() && !c.public.After(t):
		return "ExploitIsPublic"
	}
	return "NoExploit"
}

// updatedOn is the catalogue's updatedOn at t: exploit news updates it.
func (c *tvmCVE) updatedOn(t time.Time) time.Time {
	u := c.updated
	for _, x := range []time.Time{c.public, c.verified, c.inKit} {
		if !x.IsZero() && !x.After(t) && x.After(u) {
			u = x
		}
	}
	return u
}

// tvmModel is one tenant's TVM world.
type tvmModel struct {
	seed     uint64
	epoch    time.Time
	density  float64
	lines    []*tvmLine
	products []*tvmProduct
	phase    []time.Duration // per line: release(0) = epoch + phase
	stepMin  []int           // per line: the oldest release modelled
	steps    [][][]*tvmCVE   // per line, per release (from stepMin): the CVEs it fixes
	cves     []*tvmCVE       // by publication, then id
	byID     map[string]*tvmCVE

	verMu    sync.Mutex
	versions map[int64]string // product<<32 | step -> version string
}

// Model bounds: how far back versions and CVEs go, and how far ahead (so a
// long-running emulator keeps changing).
const (
	tvmHistory = 3 * 365 * day
	tvmFuture  = 2 * 365 * day
	// defaultVulnsPerMachine is the average number of vulnerability rows
	// per machine of a generated tenant.
	defaultVulnsPerMachine = 50
)

// mix64 is SplitMix64's finaliser: a fast, well-spread hash of a word.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// hashOf hashes words together with the model's seed.
func hashOf(seed uint64, words ...uint64) uint64 {
	h := mix64(seed ^ 0x9e3779b97f4a7c15)
	for _, w := range words {
		h = mix64(h ^ (w + 0x9e3779b97f4a7c15))
	}
	return h
}

// unit turns a hash into a float in [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func strHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// poisson draws a count with mean lambda from a uniform u.
func poisson(lambda, u float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		// Normal approximation, via the inverse of the logistic as a cheap
		// stand-in for the normal quantile.
		z := math.Log(u/(1-u)) * 0.5513
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*z)))
	}
	p := math.Exp(-lambda)
	cdf := p
	k := 0
	for u > cdf && k < 200 {
		k++
		p *= lambda / float64(k)
		cdf += p
	}
	return k
}

// newTVMModel builds the catalogue for a tenant. vulnsPerMachine sets the
// average number of vulnerability rows per machine; the CVE density is
// calibrated against a fixed sample of synthetic machines, so it does not
// depend on the tenant's size.
func newTVMModel(seed uint64, epoch time.Time, vulnsPerMachine float64) *tvmModel {
	if vulnsPerMachine <= 0 {
		vulnsPerMachine = defaultVulnsPerMachine
	}
	tm := &tvmModel{seed: seed, epoch: epoch.UTC().Truncate(time.Second), density: 1, lines: tvmLines(), versions: map[int64]string{}}
	for _, l := range tm.lines {
		for _, p := range l.products {
			p.idx = len(tm.products)
			tm.products = append(tm.products, p)
		}
		h := hashOf(tm.seed, 1, uint64(l.idx))
		tm.phase = append(tm.phase, -time.Duration(unit(h)*float64(l.period)))
		tm.stepMin = append(tm.stepMin, -int(tvmHistory/l.period)-1)
	}
	tm.buildCVEs()
	// Calibrate twice: the second pass corrects the Poisson rounding.
	sample := calibrationSample(seed)
	for range 2 {
		got := tm.meanRows(sample)
		if got <= 0 {
			break
		}
		tm.density *= vulnsPerMachine / got
		tm.buildCVEs()
	}
	return tm
}

// calibrationSample is a fixed set of synthetic machines with a realistic
// OS mix.
func calibrationSample(seed uint64) []*machine {
	t := Generate(GenerateOptions{Seed: int64(seed % (1 << 62)), Machines: 600, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	return t.machines
}

func (tm *tvmModel) meanRows(ms []*machine) float64 {
	total := 0
	for _, m := range ms {
		tm.machineRows(m, time.Time{}, tm.epoch, func(*tvmInstall, int, *tvmCVE, time.Time) bool {
			total++
			return true
		})
	}
	return float64(total) / float64(len(ms))
}

// release is when release n of line l came (or comes) out.
func (tm *tvmModel) release(l *tvmLine, n int) time.Time {
	jitter := time.Duration(unit(hashOf(tm.seed, 2, uint64(l.idx), uint64(int64(n)))) * float64(l.period) / 4)
	return tm.epoch.Add(tm.phase[l.idx] + time.Duration(n)*l.period + jitter)
}

// stepAt is the newest release of l out at t (never before the oldest).
func (tm *tvmModel) stepAt(l *tvmLine, t time.Time) int {
	n := int(math.Floor(float64(t.Sub(tm.epoch)-tm.phase[l.idx]) / float64(l.period)))
	for n > tm.stepMin[l.idx] && tm.release(l, n).After(t) {
		n--
	}
	return max(n, tm.stepMin[l.idx])
}

// stepRange is the releases modelled for l: stepMin .. stepMax.
func (tm *tvmModel) stepMax(l *tvmLine) int {
	return int(tvmFuture/l.period) + 1
}

// version is product p's version string at release n.
func (tm *tvmModel) version(p *tvmProduct, n int) string {
	key := int64(p.idx)<<32 | int64(uint32(int32(n)))
	tm.verMu.Lock()
	v, ok := tm.versions[key]
	tm.verMu.Unlock()
	if ok {
		return v
	}
	v = p.version(n)
	tm.verMu.Lock()
	tm.versions[key] = v
	tm.verMu.Unlock()
	return v
}

var exploitTypePool = []string{"Remote", "Local", "PrivilegeEscalation", "Dos"}

var cvssValues = struct {
	av, ac, pr, prChanged, ui, cia map[string]float64
}{
	av:        map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	ac:        map[string]float64{"L": 0.77, "H": 0.44},
	pr:        map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27},
	prChanged: map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5},
	ui:        map[string]float64{"N": 0.85, "R": 0.62},
	cia:       map[string]float64{"H": 0.56, "L": 0.22, "N": 0},
}

// cvssBase computes a CVSS v3.1 base score from its metrics.
func cvssBase(av, ac, pr, ui, s, c, i, a string) float64 {
	iss := 1 - (1-cvssValues.cia[c])*(1-cvssValues.cia[i])*(1-cvssValues.cia[a])
	var impact float64
	prv := cvssValues.pr[pr]
	if s == "C" {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
		prv = cvssValues.prChanged[pr]
	} else {
		impact = 6.42 * iss
	}
	if impact <= 0 {
		return 0
	}
	expl := 8.22 * cvssValues.av[av] * cvssValues.ac[ac] * prv * cvssValues.ui[ui]
	if s == "C" {
		return roundUp(min(1.08*(impact+expl), 10))
	}
	return roundUp(min(impact+expl, 10))
}

// roundUp is CVSS v3.1's Roundup: the smallest one-decimal number ≥ x.
func roundUp(x float64) float64 {
	n := int64(math.Round(x * 100000))
	if n%10000 == 0 {
		return float64(n) / 100000
	}
	return float64(n/10000+1) / 10
}

func severityOf(score float64) string {
	switch {
	case score >= 9:
		return "Critical"
	case score >= 7:
		return "High"
	case score >= 4:
		return "Medium"
	}
	return "Low"
}

var weaknessKinds = []struct{ kind, impact string }{
	{"a remote code execution vulnerability", "execute arbitrary code in the context of the current user"},
	{"an elevation of privilege vulnerability", "gain SYSTEM or root privileges on the affected device"},
	{"an information disclosure vulnerability", "read sensitive information from process memory"},
	{"a security feature bypass vulnerability", "bypass security restrictions enforced by the product"},
	{"a denial of service vulnerability", "crash the application or make the device unresponsive"},
	{"a spoofing vulnerability", "impersonate a trusted source and mislead the user"},
	{"a use-after-free flaw", "corrupt memory and potentially execute arbitrary code"},
	{"an out-of-bounds write", "corrupt memory and potentially execute arbitrary code"},
}

// buildCVEs (re)generates every line's CVEs at the model's density.
func (tm *tvmModel) buildCVEs() {
	tm.steps = make([][][]*tvmCVE, len(tm.lines))
	tm.cves = tm.cves[:0]
	tm.byID = map[string]*tvmCVE{}
	for _, l := range tm.lines {
		lo, hi := tm.stepMin[l.idx], tm.stepMax(l)
		tm.steps[l.idx] = make([][]*tvmCVE, hi-lo+1)
		yearSlot := map[int]int{}
		for n := lo; n <= hi; n++ {
			rel := tm.release(l, n)
			h := hashOf(tm.seed, 3, uint64(l.idx), uint64(int64(n)))
			k := min(poisson(l.rate*tm.density, unit(h)), l.cap)
			year := rel.Year()
			slot := yearSlot[year]
			yearSlot[year]++
			for j := range k {
				c := tm.newCVE(l, n, j, rel, year, slot)
				tm.steps[l.idx][n-lo] = append(tm.steps[l.idx][n-lo], c)
				tm.cves = append(tm.cves, c)
				tm.byID[c.id] = c
			}
		}
	}
	sort.Slice(tm.cves, func(i, j int) bool {
		a, b := tm.cves[i], tm.cves[j]
		if !a.published.Equal(b.published) {
			return a.published.Before(b.published)
		}
		return a.id < b.id
	})
	for i, c := range tm.cves {
		c.ordinal = i
	}
}

func (tm *tvmModel) newCVE(l *tvmLine, n, j int, rel time.Time, year, slot int) *tvmCVE {
	h := func(k uint64) uint64 { return hashOf(tm.seed, 4, uint64(l.idx), uint64(int64(n)), uint64(j), k) }
	c := &tvmCVE{line: l, fixStep: n}
	num := l.cveBase + slot*l.cap + j
	if unit(h(0)) < 0.004 {
		c.id = fmt.Sprintf("TVM-%d-%04d", year, num%10000)
	} else {
		c.id = fmt.Sprintf("CVE-%d-%d", year, num)
	}
	// Span: most flaws are recent code, some reach far back.
	switch u := unit(h(1)); {
	case u < 0.45:
		c.span = 1
	case u < 0.7:
		c.span = 2
	default:
		c.span = 1 + int(unit(h(2))*float64(l.maxSpan))
	}
	c.span = min(max(c.span, 1), l.maxSpan)
	// Editions: most CVEs of a line hit every edition, some only a few.
	c.editions = (1 << len(l.products)) - 1
	if len(l.products) > 1 && unit(h(3)) < 0.3 {
		c.editions = 0
		for e := range l.products {
			if unit(h(10+uint64(e))) < 0.6 {
				c.editions |= 1 << e
			}
		}
		if c.editions == 0 {
			c.editions = 1 << (h(4) % uint64(len(l.products)))
		}
	}
	// Publication: usually with the fix, sometimes before (zero-day) or
	// after (a late advisory).
	switch u := unit(h(5)); {
	case u < 0.08:
		c.published = rel.Add(-time.Duration(1+h(6)%10) * day)
	case u < 0.2:
		c.published = rel.Add(time.Duration(1+h(6)%25) * day)
	default:
		c.published = rel.Add(time.Duration(h(6)%8) * time.Hour)
	}
	c.published = c.published.Truncate(time.Second)
	c.updated = c.published.Add(time.Duration(h(7)%(72*3600)) * time.Second)

	// CVSS v3.1 metrics, biased by the line.
	pick := func(k uint64, p float64, yes, no string) string {
		if unit(h(k)) < p {
			return yes
		}
		return no
	}
	av := pick(20, l.remote, "N", "L")
	ac := pick(21, 0.8, "L", "H")
	pr := pick(22, 0.55+0.3*l.severe, "N", pick(23, 0.7, "L", "H"))
	ui := pick(24, 0.55, "N", "R")
	s := pick(25, 0.12, "C", "U")
	cia := func(k uint64) string {
		u := unit(h(k))
		switch {
		case u < 0.35+0.45*l.severe:
			return "H"
		case u < 0.8:
			return "L"
		}
		return "N"
	}
	ci, ii, ai := cia(26), cia(27), cia(28)
	if ci == "N" && ii == "N" && ai == "N" {
		ai = "H"
	}
	c.cvss = cvssBase(av, ac, pr, ui, s, ci, ii, ai)
	c.severity = severityOf(c.cvss)

	// Exploits: some CVEs get a public exploit after publication; of those
	// some are verified and a few end up in kits.
	if unit(h(30)) < 0.1+0.1*l.severe {
		c.public = c.published.Add(time.Duration(h(31)%(120*24)) * time.Hour)
		if unit(h(32)) < 0.3 {
			c.verified = c.public.Add(time.Duration(h(33)%(30*24)) * time.Hour)
			if unit(h(34)) < 0.3 {
				c.inKit = c.verified.Add(time.Duration(h(35)%(60*24)) * time.Hour)
			}
		}
		c.exploitURI = "https://www.exploit-db.com/exploits/" + strconv.Itoa(50000+int(h(36)%20000))
	}
	e := "U"
	switch {
	case !c.inKit.IsZero():
		e = "H"
	case !c.verified.IsZero():
		e = "F"
	case !c.public.IsZero():
		e = "P"
	}
	c.vector = fmt.Sprintf("CVSS:3.1/AV:%s/AC:%s/PR:%s/UI:%s/S:%s/C:%s/I:%s/A:%s/E:%s/RL:O/RC:C", av, ac, pr, ui, s, ci, ii, ai, e)
	if av == "N" {
		c.exploitTypes = append(c.exploitTypes, "Remote")
	} else {
		c.exploitTypes = append(c.exploitTypes, "Local")
	}
	if pr != "N" && (ci == "H" || ii == "H") {
		c.exploitTypes = append(c.exploitTypes, "PrivilegeEscalation")
	}
	if ai == "H" && ci == "N" && ii == "N" {
		c.exploitTypes = []string{"Dos"}
	}
	switch u := unit(h(40)); {
	case u < 0.02:
		c.supportability = "NotSupported"
	case u < 0.05:
		c.supportability = "SupportedInPremium"
	default:
		c.supportability = "Supported"
	}
	if !strings.HasPrefix(c.id, "TVM-") {
		c.epss = some(math.Round(math.Pow(unit(h(41)), 4)*1000) / 1000)
	}
	w := weaknessKinds[h(42)%uint64(len(weaknessKinds))]
	c.description = fmt.Sprintf("Summary: %s contains %s. An attacker who successfully exploits it could %s. Impact: "+
		"Successful exploitation could compromise the confidentiality, integrity or availability of the affected device. "+
		"Remediation: Apply the latest update provided by the vendor. Generated by AI", l.name, w.kind, w.impact)
	if l.fix == fixMonthlyKB {
		c.kb = strconv.Itoa(5040000 + int(h(43)%60000))
	}
	return c
}

// cvesFixedBy returns the CVEs release n of line l fixes.
func (tm *tvmModel) cvesFixedBy(l *tvmLine, n int) []*tvmCVE {
	i := n - tm.stepMin[l.idx]
	if i < 0 || i >= len(tm.steps[l.idx]) {
		return nil
	}
	return tm.steps[l.idx][i]
}

// tvmInstall is one product installed on one machine.
type tvmInstall struct {
	p      *tvmProduct
	lag    time.Duration // how long after a release the machine has it
	frozen int           // the newest release it will ever get
	since  time.Time     // when the machine came into the tenant (zero: always)
}

// tvmMachineSpec is what the model knows of one machine.
type tvmMachineSpec struct {
	installs []tvmInstall
	arch     string
}

// Machine hygiene classes: how soon a machine installs updates.
var hygiene = []struct {
	share    float64
	lo, hi   time.Duration
	freezeLo time.Duration // > 0: the machine stopped updating this long ago (lo..hi)
	freezeHi time.Duration
}{
	{0.62, 12 * time.Hour, 6 * day, 0, 0},
	{0.22, 6 * day, 35 * day, 0, 0},
	{0.11, 35 * day, 160 * day, 0, 0},
	{0.05, 10 * day, 30 * day, 45 * day, 700 * day},
}

// spec derives a machine's software from its id, platform and name.
func (tm *tvmModel) spec(m *machine, since time.Time) tvmMachineSpec {
	fam := familyOf(m.OSPlatform)
	if fam == 0 {
		return tvmMachineSpec{}
	}
	mh := hashOf(tm.seed, 5, strHash(m.ID))
	u := unit(mh)
	cls := hygiene[len(hygiene)-1]
	for _, c := range hygiene {
		if u < c.share {
			cls = c
			break
		}
		u -= c.share
	}
	base := cls.lo + time.Duration(unit(mix64(mh^1))*float64(cls.hi-cls.lo))
	var freezeAt time.Time
	if cls.freezeHi > 0 {
		freezeAt = tm.epoch.Add(-cls.freezeLo - time.Duration(unit(mix64(mh^2))*float64(cls.freezeHi-cls.freezeLo)))
	}
	name := strings.ToLower(m.ComputerDNSName)
	s := tvmMachineSpec{arch: "x64"}
	if m.OSArchitecture.OK && m.OSArchitecture.V == "32-bit" {
		s.arch = "x86"
	}
	for _, p := range tm.products {
		if len(p.platforms) > 0 && !slices.ContainsFunc(p.platforms, func(pl string) bool { return strings.EqualFold(pl, m.OSPlatform) }) {
			continue
		}
		if !p.os {
			ph := hashOf(tm.seed, 6, strHash(m.ID), uint64(p.idx))
			if len(p.roles) > 0 {
				if !slices.ContainsFunc(p.roles, func(r string) bool { return strings.Contains(name, r) }) {
					continue
				}
			} else if unit(ph) >= p.install[fam] {
				continue
			}
		}
		ih := hashOf(tm.seed, 7, strHash(m.ID), uint64(p.idx))
		lag := time.Duration(float64(base) * p.line.autoLag * (0.6 + 0.8*unit(ih)))
		inst := tvmInstall{p: p, lag: lag, frozen: math.MaxInt, since: since}
		if !freezeAt.IsZero() {
			inst.frozen = tm.stepAt(p.line, freezeAt.Add(-lag))
		}
		s.installs = append(s.installs, inst)
	}
	return s
}

// stepOf is the release an install runs at t, and since when.
func (tm *tvmModel) stepOf(in *tvmInstall, t time.Time) (int, time.Time) {
	l := in.p.line
	n := min(tm.stepAt(l, t.Add(-in.lag)), in.frozen)
	first := tm.release(l, n).Add(in.lag)
	if n == tm.stepMin[l.idx] || first.After(t) {
		first = tm.epoch.Add(-tvmHistory)
	}
	if in.since.After(first) {
		first = in.since
	}
	return n, first
}

// eos says whether an install's product is out of support at t.
func (in *tvmInstall) eos(t time.Time) bool { return !in.p.eos.IsZero() && !in.p.eos.After(t) }

// openCVEs calls fn for each CVE affecting release n of p that is published
// at t.
func (tm *tvmModel) openCVEs(p *tvmProduct, n int, t time.Time, fn func(*tvmCVE) bool) bool {
	l := p.line
	bit := uint64(1) << p.edition
	for k := n + 1; k <= n+l.maxSpan; k++ {
		for _, c := range tm.cvesFixedBy(l, k) {
			if k-c.span <= n && c.editions&bit != 0 && !c.published.After(t) {
				if !fn(c) {
					return false
				}
			}
		}
	}
	return true
}

// machineRows calls fn for every vulnerability row of m at t: the install,
// its release, the CVE (nil for the row of an end-of-support product) and
// when the row was first seen. since is when m came into the tenant (zero:
// always there). It stops when fn returns false.
func (tm *tvmModel) machineRows(m *machine, since, t time.Time, fn func(in *tvmInstall, n int, c *tvmCVE, first time.Time) bool) bool {
	if since.After(t) {
		return true
	}
	s := tm.spec(m, since)
	return tm.specRows(&s, t, fn)
}

// specRows is machineRows for a machine's spec.
func (tm *tvmModel) specRows(s *tvmMachineSpec, t time.Time, fn func(in *tvmInstall, n int, c *tvmCVE, first time.Time) bool) bool {
	for i := range s.installs {
		in := &s.installs[i]
		n, installed := tm.stepOf(in, t)
		if in.eos(t) && !fn(in, n, nil, maxTime(installed, in.p.eos)) {
			return false
		}
		ok := tm.openCVEs(in.p, n, t, func(c *tvmCVE) bool {
			return fn(in, n, c, maxTime(installed, c.published))
		})
		if !ok {
			return false
		}
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// cvesPublished returns the catalogue as of t (CVEs published by then).
func (tm *tvmModel) cvesPublished(t time.Time) []*tvmCVE {
	i := sort.Search(len(tm.cves), func(i int) bool { return tm.cves[i].published.After(t) })
	return tm.cves[:i]
}
