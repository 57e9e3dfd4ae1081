package emulator

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The file, IP, domain and user endpoints (mde-api.md §4.7, §5.9).

// maxDomainMachines is the most machines GET /api/domains/{d}/machines returns.
const maxDomainMachines = 500

func (s *Server) addEntityRoutes() {
	add := func(template string, roles []string, h func(*exchange)) {
		s.routes.add(&route{method: "GET", template: template, surface: surfaceMDE, roles: roles, limit: defaultLimit, handle: h})
	}
	add("/api/files/{id}", []string{"File.Read.All"}, s.getFile)
	add("/api/files/{id}/stats", []string{"File.Read.All"}, s.fileStats)
	add("/api/files/{id}/machines", machineRead, s.fileMachines)
	add("/api/ips/{ip}/stats", []string{"Ip.Read.All"}, s.ipStats)
	add("/api/domains/{domain}/stats", []string{"URL.Read.All"}, s.domainStats)
	add("/api/domains/{domain}/machines", machineRead, s.domainMachines)
	add("/api/users/{user}/machines", machineRead, s.userMachines)
	add("/api/files/{id}/alerts", alertRead, s.fileAlerts)
	add("/api/ips/{ip}/alerts", alertRead, s.ipAlerts)
	add("/api/domains/{domain}/alerts", alertRead, s.domainAlerts)
	add("/api/users/{user}/alerts", alertRead, s.userAlerts)
}

// alertMachines returns the (lower-case) ids of the machines with alerts
// that mention value: a file, IP or domain an alert saw was seen by its
// machine, beyond what the catalogue says.
func (s *Server) alertMachines(kind EntityKind, value string, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, a := range s.tenant.alertsMentioning(kind, value, now) {
		out[strings.ToLower(a.MachineID)] = true
	}
	return out
}

// evidenceFile profiles a file the catalogue does not know but an alert's
// evidence does, as GET /api/alerts/{id}/files profiles it.
func (s *Server) evidenceFile(hash string, now time.Time) (fileProfile, bool) {
	for _, a := range s.tenant.alertsMentioning(EntityFile, hash, now) {
		for _, e := range a.alertFiles() {
			if strings.EqualFold(e.SHA1.V, hash) || strings.EqualFold(e.SHA256.V, hash) {
				return evidenceFileOf(e, a), true
			}
		}
	}
	return fileProfile{}, false
}

// alertCollection answers alerts (with evidence) under the given entity
// set name: the live service names the IP alerts' set AlertEntitySetName
// (observed/get_ip_related_alerts.json) and the others Alerts.
func (x *exchange) alertCollection(set string, as []*alert) {
	items := make([][]byte, len(as))
	for i, a := range as {
		items[i] = appendAlert(nil, a, true, nil)
	}
	x.writeCollection("/api/$metadata#"+set, items)
}

func (s *Server) fileAlerts(x *exchange) {
	if h, ok := x.fileHash(false); ok {
		x.alertCollection("Alerts", s.tenant.alertsMentioning(EntityFile, h, s.now()))
	}
}

func (s *Server) ipAlerts(x *exchange) {
	ip, err := netip.ParseAddr(x.param("ip"))
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidIpAddress", fmt.Sprintf("IP address %s is invalid.", x.param("ip")))
		return
	}
	x.alertCollection("AlertEntitySetName", s.tenant.alertsMentioning(EntityIP, ip.String(), s.now()))
}

func (s *Server) domainAlerts(x *exchange) {
	if d, _, ok := s.domainFromPath(x); ok {
		x.alertCollection("Alerts", s.tenant.alertsMentioning(EntityDomain, d, s.now()))
	}
}

func (s *Server) userAlerts(x *exchange) {
	x.alertCollection("Alerts", s.tenant.alertsMentioning(EntityUser, x.param("user"), s.now()))
}

// lookBack reads ?lookBackHours= (default and maximum 720, 30 days).
func (x *exchange) lookBack() (time.Duration, bool) {
	v := ""
	for k, vs := range x.r.URL.Query() {
		if strings.EqualFold(k, "lookBackHours") {
			v = vs[0]
		}
	}
	if v == "" {
		return 720 * time.Hour, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 720 {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input lookBackHours "+v)
		return 0, false
	}
	return time.Duration(n) * time.Hour, true
}

// fileJSON is a file profile (observed/get_file_information.json).
type fileJSON struct {
	SHA1                string   `json:"sha1"`
	SHA256              string   `json:"sha256"`
	MD5                 string   `json:"md5"`
	GlobalPrevalence    int64    `json:"globalPrevalence"`
	GlobalFirstObserved wireTime `json:"globalFirstObserved"`
	GlobalLastObserved  wireTime `json:"globalLastObserved"`
	Size                int64    `json:"size"`
	FileType            *string  `json:"fileType"`
	IsPeFile            bool     `json:"isPeFile"`
	FilePublisher       *string  `json:"filePublisher"`
	FileProductName     *string  `json:"fileProductName"`
	Signer              *string  `json:"signer"`
	Issuer              *string  `json:"issuer"`
	SignerHash          *string  `json:"signerHash"`
	IsValidCertificate  *bool    `json:"isValidCertificate"`
	DeterminationType   string   `json:"determinationType"`
	DeterminationValue  *string  `json:"determinationValue"`
}

func (f *fileInfo) wire() fileJSON {
	var valid *bool
	if f.ValidCert.OK {
		valid = &f.ValidCert.V
	}
	return fileJSON{SHA1: f.SHA1, SHA256: f.SHA256, MD5: f.MD5, GlobalPrevalence: f.GlobalPrevalence,
		GlobalFirstObserved: wireTime(f.GlobalFirst), GlobalLastObserved: wireTime(f.GlobalLast), Size: f.Size,
		FileType: optPtr(f.FileType), IsPeFile: f.IsPE, FilePublisher: optPtr(f.Publisher), FileProductName: optPtr(f.Product),
		Signer: optPtr(f.Signer), Issuer: optPtr(f.Issuer), SignerHash: optPtr(f.SignerHash), IsValidCertificate: valid,
		DeterminationType: f.Determination, DeterminationValue: optPtr(f.DeterminationValue)}
}

// fileHash reads a SHA-1 or SHA-256 from the path (also SHA-1 only when
// sha1Only), answering 400 for anything else.
func (x *exchange) fileHash(sha1Only bool) (string, bool) {
	h := strings.ToLower(x.param("id"))
	if isHex(h, 40) || (!sha1Only && isHex(h, 64)) {
		return h, true
	}
	x.mdeError(http.StatusBadRequest, "InvalidHashValue", fmt.Sprintf("Hash value %s is invalid.", x.param("id")))
	return "", false
}

func (s *Server) getFile(x *exchange) {
	h, ok := x.fileHash(false)
	if !ok {
		return
	}
	f := s.tenant.response().catalog.fileByHash[h]
	if f == nil {
		if p, ok := s.evidenceFile(h, s.now()); ok {
			prefix := appendString([]byte(`"@odata.context":`), x.baseURL()+"/api/$metadata#Files/$entity")
			x.odata(http.StatusOK, appendFileProfile(nil, p, prefix))
			return
		}
		x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("File %s was not found", x.param("id")))
		return
	}
	x.entity(http.StatusOK, "Files/$entity", f.wire())
}

func (s *Server) fileStats(x *exchange) {
	h, ok := x.fileHash(false)
	if !ok {
		return
	}
	window, ok := x.lookBack()
	if !ok {
		return
	}
	o := s.tenant.response().catalog
	now := s.now()
	f := o.fileByHash[h]
	if f == nil {
		ev, ok := s.evidenceFile(h, now)
		if !ok {
			x.mdeError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("File %s was not found", x.param("id")))
			return
		}
		f = &fileInfo{SHA1: ev.SHA1, GlobalPrevalence: ev.GlobalPrevalence.V, GlobalFirst: ev.GlobalFirstObserved, GlobalLast: ev.GlobalLastObserved}
		for _, a := range s.tenant.alertsMentioning(EntityFile, h, now) {
			for _, e := range a.alertFiles() {
				if f.Name == "" && (strings.EqualFold(e.SHA1.V, h) || strings.EqualFold(e.SHA256.V, h)) {
					f.Name = e.FileName.V
				}
			}
		}
	}
	alerted := s.alertMachines(EntityFile, h, now)
	var p prevalence
	for _, m := range s.tenant.selectMachines(func(m *machine) bool { return o.hasFile(m, f) || alerted[strings.ToLower(m.ID)] }) {
		p.add(m, now.Add(-window), now)
	}
	names := []string{}
	if p.count > 0 && f.Name != "" {
		names = append(names, f.Name)
	}
	x.entity(http.StatusOK, "microsoft.windowsDefenderATP.api.InOrgFileStats", struct {
		SHA1                   string   `json:"sha1"`
		OrgPrevalence          string   `json:"orgPrevalence"`
		OrganizationPrevalence int      `json:"organizationPrevalence"`
		OrgFirstSeen           wireTime `json:"orgFirstSeen"`
		OrgLastSeen            wireTime `json:"orgLastSeen"`
		GlobalPrevalence       string   `json:"globalPrevalence"`
		GloballyPrevalence     int64    `json:"globallyPrevalence"`
		GlobalFirstObserved    wireTime `json:"globalFirstObserved"`
		GlobalLastObserved     wireTime `json:"globalLastObserved"`
		TopFileNames           []string `json:"topFileNames"`
	}{f.SHA1, strconv.Itoa(p.count), p.count, wireTime(p.first), wireTime(p.last), strconv.FormatInt(f.GlobalPrevalence, 10),
		f.GlobalPrevalence, wireTime(f.GlobalFirst), wireTime(f.GlobalLast), names})
}

// fileMachines is GET /api/files/{sha1}/machines: SHA-1 only; an unknown
// file is an empty set, not a 404.
func (s *Server) fileMachines(x *exchange) {
	h, ok := x.fileHash(true)
	if !ok {
		return
	}
	o := s.tenant.response().catalog
	f := o.fileByHash[h]
	alerted := s.alertMachines(EntityFile, h, s.now())
	ms := s.tenant.selectMachines(func(m *machine) bool {
		return f != nil && o.hasFile(m, f) || alerted[strings.ToLower(m.ID)]
	})
	x.writeMachineCollection(ms)
}

func (s *Server) ipStats(x *exchange) {
	ip, err := netip.ParseAddr(x.param("ip"))
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidIpAddress", fmt.Sprintf("IP address %s is invalid.", x.param("ip")))
		return
	}
	window, ok := x.lookBack()
	if !ok {
		return
	}
	o := s.tenant.response().catalog
	now := s.now()
	alerted := s.alertMachines(EntityIP, ip.String(), now)
	var p prevalence
	for _, m := range s.tenant.selectMachines(func(m *machine) bool { return o.ipSeenBy(m, ip) || alerted[strings.ToLower(m.ID)] }) {
		p.add(m, now.Add(-window), now)
	}
	x.entity(http.StatusOK, "microsoft.windowsDefenderATP.api.InOrgIPStats", struct {
		IPAddress              string   `json:"ipAddress"`
		OrgPrevalence          string   `json:"orgPrevalence"`
		OrganizationPrevalence int      `json:"organizationPrevalence"`
		OrgFirstSeen           wireTime `json:"orgFirstSeen"`
		OrgLastSeen            wireTime `json:"orgLastSeen"`
	}{x.param("ip"), strconv.Itoa(p.count), p.count, wireTime(p.first), wireTime(p.last)})
}

// validDomain checks a host name: dot-separated labels of letters, digits
// and hyphens, not starting or ending with a hyphen.
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// domainFromPath returns the catalogued domain named in the path (nil when
// the tenant never saw it), answering 400 for a malformed one.
func (s *Server) domainFromPath(x *exchange) (string, *domainInfo, bool) {
	d := strings.ToLower(strings.TrimSuffix(x.param("domain"), "."))
	if !validDomain(d) {
		x.mdeError(http.StatusBadRequest, "InvalidDomainName", fmt.Sprintf("Domain name %s is invalid.", x.param("domain")))
		return "", nil, false
	}
	return d, s.tenant.response().catalog.domainByKey[d], true
}

func (s *Server) domainStats(x *exchange) {
	d, di, ok := s.domainFromPath(x)
	if !ok {
		return
	}
	window, ok := x.lookBack()
	if !ok {
		return
	}
	now := s.now()
	var p prevalence
	for _, m := range s.domainMachineList(d, di, now) {
		p.add(m, now.Add(-window), now)
	}
	x.entity(http.StatusOK, "microsoft.windowsDefenderATP.api.InOrgDomainStats", struct {
		Host                   string   `json:"host"`
		OrgPrevalence          string   `json:"orgPrevalence"`
		OrgFirstSeen           wireTime `json:"orgFirstSeen"`
		OrgLastSeen            wireTime `json:"orgLastSeen"`
		OrganizationPrevalence int      `json:"organizationPrevalence"`
	}{x.param("domain"), strconv.Itoa(p.count), wireTime(p.first), wireTime(p.last), p.count})
}

func (s *Server) domainMachines(x *exchange) {
	d, di, ok := s.domainFromPath(x)
	if !ok {
		return
	}
	ms := s.domainMachineList(d, di, s.now())
	x.writeMachineCollection(ms[:min(len(ms), maxDomainMachines)])
}

// domainMachineList returns the machines that contacted a domain: those
// the catalogue says did (di, when it knows the domain) and those with
// alerts that saw it.
func (s *Server) domainMachineList(d string, di *domainInfo, now time.Time) []*machine {
	o := s.tenant.response().catalog
	alerted := s.alertMachines(EntityDomain, d, now)
	return s.tenant.selectMachines(func(m *machine) bool {
		return di != nil && o.contacted(m, di) || alerted[strings.ToLower(m.ID)]
	})
}

// userMachines is GET /api/users/{user}/machines: the user is the account
// name alone ("user1"), not a UPN or DOMAIN\user; its machines are those it
// logged on to in the last 30 days (the logon users model) or that alerts
// name it on.
func (s *Server) userMachines(x *exchange) {
	user := x.param("user")
	now := s.now()
	alerted := s.alertMachines(EntityUser, user, now)
	ms := s.tenant.selectMachines(func(m *machine) bool {
		return alerted[strings.ToLower(m.ID)] || slices.ContainsFunc(s.tenant.visibleLogonUsers(m, now), func(u logonUser) bool { return strings.EqualFold(u.Name, user) })
	})
	x.writeMachineCollection(ms)
}
