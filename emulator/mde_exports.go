package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

// The export assessment APIs (mde-api.md §5.8): per-device vulnerability,
// software inventory and secure configuration data of the whole tenant,
// either as JSON pages (pageSize rows, an opaque $skiptoken) or "via files":
// gzip JSON Lines on an emulated blob endpoint, behind SAS-style links that
// expire with blob storage's own 403.

var (
	vulnRead     = []string{"Vulnerability.Read.All"}
	softwareRead = []string{"Software.Read.All"}

	exportJSONLimit = limitSpec{windows: []ratelimit.Window{perMinute(30), perHour(1000)}, code: "TooManyRequests"}
	exportFileLimit = limitSpec{windows: []ratelimit.Window{perMinute(5), perHour(20)}, code: "TooManyRequests"}
)

// surfaceBlob is the emulated Azure Blob Storage that serves export files:
// no bearer token (the link's SAS signature is the credential), no MDE rate
// limit, Azure Storage's XML errors.
const surfaceBlob = surfaceControl + 1

const (
	defaultExportPageSize = 50_000
	maxExportPageSize     = 200_000
	// defaultExportFileMachines is how many machines' rows one export file
	// holds by default.
	defaultExportFileMachines = 4000
	maxDeltaWindow            = 14 * day
)

// exportKind is one of the exported datasets.
type exportKind int

const (
	kindVulns exportKind = iota
	kindSoftware
	kindSecureConfig
)

var exportFolders = [...]string{"VaExport", "SoftwareInventory", "ScaExport"}

func (s *Server) addExportRoutes() {
	add := func(template string, roles []string, limit limitSpec, h func(*exchange)) {
		s.routes.add(&route{method: "GET", template: template, surface: surfaceMDE, roles: roles, limit: limit, handle: h})
	}
	add("/api/machines/SoftwareVulnerabilitiesByMachine", vulnRead, exportJSONLimit, func(x *exchange) { s.exportPage(x, kindVulns) })
	add("/api/machines/SoftwareVulnerabilitiesExport", vulnRead, exportFileLimit, func(x *exchange) { s.exportFiles(x, kindVulns) })
	add("/api/machines/SoftwareVulnerabilityChangesByMachine", vulnRead, exportJSONLimit, s.exportDelta)
	add("/api/machines/SoftwareInventoryByMachine", softwareRead, exportJSONLimit, func(x *exchange) { s.exportPage(x, kindSoftware) })
	add("/api/machines/SoftwareInventoryExport", softwareRead, exportFileLimit, func(x *exchange) { s.exportFiles(x, kindSoftware) })
	add("/api/machines/SecureConfigurationsAssessmentByMachine", vulnRead, exportJSONLimit, func(x *exchange) { s.exportPage(x, kindSecureConfig) })
	add("/api/machines/SecureConfigurationsAssessmentExport", vulnRead, exportFileLimit, func(x *exchange) { s.exportFiles(x, kindSecureConfig) })
	s.routes.add(&route{method: "GET", template: "/tvm-export/{date}/{time}/{kind}/json/{org}/{file}", surface: surfaceBlob, handle: s.serveBlob})
}

// queryParams reads a query's parameters with case-insensitive names (the
// docs spell them pageSize, the service's own links pagesize) and refuses
// any OData option the export APIs do not take.
func (x *exchange) queryParams(allowed ...string) (map[string]string, bool) {
	out := map[string]string{}
	for k, v := range x.r.URL.Query() {
		name := strings.ToLower(k)
		if !slices.Contains(allowed, name) {
			if strings.HasPrefix(name, "$") {
				x.mdeError(http.StatusBadRequest, "ODataError", fmt.Sprintf("The query parameter '%s' is not supported.", k))
				return nil, false
			}
			continue
		}
		out[name] = v[0]
	}
	return out, true
}

// exportSkipToken is the export APIs' opaque continuation, in the shape the
// service's own tokens decode to.
type exportSkipToken struct {
	ExportDefinition struct {
		TimePath string `json:"TimePath"`
	} `json:"ExportDefinition"`
	ExportFileIndex int    `json:"ExportFileIndex"`
	LineStoppedAt   int    `json:"LineStoppedAt"`
	SinceTime       string `json:"SinceTime,omitempty"` // delta only
}

const timePathLayout = "2006-01-02/1504/"

func (tok exportSkipToken) encode() string {
	b, _ := json.Marshal(tok)
	return base64.StdEncoding.EncodeToString(b)
}

func decodeSkipToken(s string) (exportSkipToken, time.Time, error) {
	var tok exportSkipToken
	raw, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(raw, &tok)
	}
	if err != nil {
		return tok, time.Time{}, fmt.Errorf("invalid skip token")
	}
	at, err := time.Parse(timePathLayout, tok.ExportDefinition.TimePath)
	if err != nil || tok.ExportFileIndex < 0 || tok.LineStoppedAt < 0 {
		return tok, time.Time{}, fmt.Errorf("invalid skip token")
	}
	return tok, at, nil
}

// pageSize reads pageSize and $top: $top returns that many rows and no
// nextLink.
func (x *exchange) pageSize(q map[string]string) (size int, top bool, ok bool) {
	size = defaultExportPageSize
	if v, has := q["pagesize"]; has {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxExportPageSize {
			x.mdeError(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input pageSize: it must be a whole number from 1 to %d.", maxExportPageSize))
			return 0, false, false
		}
		size = n
	}
	if v, has := q["$top"]; has {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			x.mdeError(http.StatusBadRequest, "ODataError", fmt.Sprintf("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v))
			return 0, false, false
		}
		return min(n, maxExportPageSize), true, true
	}
	return size, false, true
}

// snapshotFor returns the kept snapshot of time at, or one rebuilt from the
// current machines (the model can recompute any moment).
func (s *Server) snapshotFor(at time.Time) *tvmSnapshot {
	if snap := s.tenant.snapshotAt(at); snap != nil {
		return snap
	}
	cur := s.tenant.snapshot(s.now())
	return &tvmSnapshot{at: at, model: cur.model, machines: cur.machines, joined: cur.joined, perFile: cur.perFile, files: map[exportKind]*exportFiles{}}
}

var exportContexts = [...]string{
	"#Collection(microsoft.windowsDefenderATP.api.AssetVulnerability)",
	"#Collection(microsoft.windowsDefenderATP.api.AssetSoftware)",
	"#Collection(microsoft.windowsDefenderATP.api.AssetConfiguration)",
}

var exportPaths = [...]string{
	"/api/machines/SoftwareVulnerabilitiesByMachine",
	"/api/machines/SoftwareInventoryByMachine",
	"/api/machines/SecureConfigurationsAssessmentByMachine",
}

// exportPage serves one page of a JSON export from the current snapshot
// (or the one its skip token names).
func (s *Server) exportPage(x *exchange, kind exportKind) {
	q, ok := x.queryParams("pagesize", "$top", "$skiptoken")
	if !ok {
		return
	}
	size, top, ok := x.pageSize(q)
	if !ok {
		return
	}
	snap := s.tenant.snapshot(s.now())
	file, line := 0, 0
	if v, has := q["$skiptoken"]; has {
		tok, at, err := decodeSkipToken(v)
		if err != nil {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input $skiptoken")
			return
		}
		snap, file, line = s.snapshotFor(at), tok.ExportFileIndex, tok.LineStoppedAt
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, x.baseURL()+"/api/$metadata"+exportContexts[kind])
	b = append(b, `,"value":[`...)
	// Take up to size records from (file, line) on; the record after the
	// last one taken, if there is one, is where the next page starts.
	n, nextFile, nextLine := 0, -1, 0
	for f := file; f < snap.fileCount() && nextFile < 0; f++ {
		lo, hi := snap.fileRange(f)
		idx := 0
		for i := lo; i < hi && nextFile < 0; i++ {
			ctx := snap.rowContext(i)
			snap.eachRecord(kind, &ctx, func(rec func([]byte) []byte) bool {
				if f == file && idx < line {
					idx++
					return true
				}
				if n == size {
					nextFile, nextLine = f, idx
					return false
				}
				if n > 0 {
					b = append(b, ',')
				}
				b = rec(b)
				n++
				idx++
				return true
			})
		}
	}
	b = append(b, ']')
	if !top && nextFile >= 0 {
		var tok exportSkipToken
		tok.ExportDefinition.TimePath = snap.at.Format(timePathLayout)
		tok.ExportFileIndex, tok.LineStoppedAt = nextFile, nextLine
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+exportPaths[kind]+"?pagesize="+strconv.Itoa(size)+"&$skiptoken="+url.QueryEscape(tok.encode()))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// fileCount is the number of export files (and JSON partitions).
func (s *tvmSnapshot) fileCount() int {
	return (len(s.machines) + s.perFile - 1) / s.perFile
}

// fileRange is the machines of file i.
func (s *tvmSnapshot) fileRange(i int) (lo, hi int) {
	lo = i * s.perFile
	return lo, min(lo+s.perFile, len(s.machines))
}

// eachRecord calls fn with an encoder of each record of one machine, in
// export order, until fn returns false.
func (s *tvmSnapshot) eachRecord(kind exportKind, ctx *rowContext, fn func(rec func([]byte) []byte) bool) bool {
	tm := s.model
	switch kind {
	case kindVulns:
		return tm.specRows(&ctx.spec, s.at, func(in *tvmInstall, n int, c *tvmCVE, first time.Time) bool {
			return fn(func(b []byte) []byte { return tm.appendVulnRow(b, ctx, in, n, c, first, s.at, nil) })
		})
	case kindSoftware:
		for k := range ctx.spec.installs {
			in := &ctx.spec.installs[k]
			n, first := tm.stepOf(in, s.at)
			weak := 0
			tm.openCVEs(in.p, n, s.at, func(*tvmCVE) bool { weak++; return true })
			if !fn(func(b []byte) []byte { return tm.appendSoftwareRow(b, ctx, in, n, first, weak, s.at) }) {
				return false
			}
		}
	case kindSecureConfig:
		for _, c := range secureConfigsFor(ctx.m) {
			if !fn(func(b []byte) []byte { return tm.appendConfigRow(b, ctx, c, s.at) }) {
				return false
			}
		}
	}
	return true
}

// exportDelta is GET /api/machines/SoftwareVulnerabilityChangesByMachine.
func (s *Server) exportDelta(x *exchange) {
	q, ok := x.queryParams("pagesize", "$top", "$skiptoken", "sincetime")
	if !ok {
		return
	}
	size, top, ok := x.pageSize(q)
	if !ok {
		return
	}
	now := s.now()
	snap := s.tenant.snapshot(now)
	offset := 0
	sinceText := q["sincetime"]
	if v, has := q["$skiptoken"]; has {
		tok, at, err := decodeSkipToken(v)
		if err != nil || tok.SinceTime == "" {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input $skiptoken")
			return
		}
		snap, offset, sinceText = s.snapshotFor(at), tok.LineStoppedAt, tok.SinceTime
	}
	if sinceText == "" {
		x.mdeError(http.StatusBadRequest, "MissingRequiredParameter", "Parameter sinceTime is missing.")
		return
	}
	since, err := parseSinceTime(sinceText)
	if err != nil {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input sinceTime: "+sinceText)
		return
	}
	if since.Before(now.Add(-maxDeltaWindow)) {
		x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input sinceTime: it must be within the last 14 days.")
		return
	}
	var rows []tvmDeltaRow
	if since.Before(snap.at) {
		rows = s.tenant.delta(snap, since).rows
	}
	end := min(offset+size, len(rows))
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, x.baseURL()+"/api/$metadata#Collection(microsoft.windowsDefenderATP.api.DeltaAssetVulnerability)")
	b = append(b, `,"value":[`...)
	var ctx rowContext
	ctxOf := -1
	for i := min(offset, end); i < end; i++ {
		r := &rows[i]
		if i > offset {
			b = append(b, ',')
		}
		if r.machine != ctxOf {
			ctx, ctxOf = snap.rowContext(r.machine), r.machine
		}
		b = snap.model.appendVulnRow(b, &ctx, &r.in, r.n, r.cve, r.first, r.state, &deltaFields{status: r.status.String(), at: r.at})
	}
	b = append(b, ']')
	if !top && end < len(rows) {
		var tok exportSkipToken
		tok.ExportDefinition.TimePath = snap.at.Format(timePathLayout)
		tok.LineStoppedAt, tok.SinceTime = end, sinceText
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, x.baseURL()+"/api/machines/SoftwareVulnerabilityChangesByMachine?sincetime="+url.QueryEscape(sinceText)+
			"&pagesize="+strconv.Itoa(size)+"&$skiptoken="+url.QueryEscape(tok.encode()))
	}
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// parseSinceTime reads an ISO 8601 date or date-time (UTC when no zone).
func parseSinceTime(s string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// exportFiles holds one snapshot's encoded export files of one kind.
type exportFiles struct {
	once  sync.Once
	names []string
	data  [][]byte
	rows  int
}

// files encodes (once) the snapshot's export files of a kind: gzip JSON
// Lines, one file per partition of machines, encoded in parallel.
func (s *tvmSnapshot) exportFiles(kind exportKind) *exportFiles {
	s.filesMu.Lock()
	f := s.files[kind]
	if f == nil {
		f = &exportFiles{}
		s.files[kind] = f
	}
	s.filesMu.Unlock()
	f.once.Do(func() {
		n := s.fileCount()
		f.names = make([]string, n)
		f.data = make([][]byte, n)
		counts := make([]int, n)
		guid := guidFromBytes(func() []byte {
			h := hashOf(s.model.seed, 50, uint64(kind), uint64(s.at.Unix()))
			b := make([]byte, 16)
			for i := range 16 {
				b[i] = byte(mix64(h+uint64(i)) >> 7)
			}
			return b
		}())
		var wg sync.WaitGroup
		work := make(chan int)
		for range max(1, runtime.GOMAXPROCS(0)) {
			wg.Go(func() {
				for i := range work {
					f.data[i], counts[i] = s.encodeFile(kind, i)
				}
			})
		}
		for i := range n {
			f.names[i] = fmt.Sprintf("part-%05d-%s.c000.json.gz", i, guid)
			work <- i
		}
		close(work)
		wg.Wait()
		for _, c := range counts {
			f.rows += c
		}
	})
	return f
}

// encodeFile encodes partition i as gzip JSON Lines.
func (s *tvmSnapshot) encodeFile(kind exportKind, i int) ([]byte, int) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	lo, hi := s.fileRange(i)
	rows := 0
	var line []byte
	for k := lo; k < hi; k++ {
		ctx := s.rowContext(k)
		line = line[:0]
		s.eachRecord(kind, &ctx, func(rec func([]byte) []byte) bool {
			line = rec(line)
			line = append(line, '\n')
			rows++
			return true
		})
		zw.Write(line)
	}
	zw.Close()
	return buf.Bytes(), rows
}

// PrepareExports encodes the current snapshot's export files now, as the
// live service does on its own schedule, so that a first export request
// does not wait for them. It returns the number of rows of each kind.
func (s *Server) PrepareExports() map[string]int {
	snap := s.tenant.snapshot(s.now())
	out := map[string]int{}
	for k, name := range []string{"vulnerabilities", "software", "secureConfigurations"} {
		out[name] = snap.exportFiles(exportKind(k)).rows
	}
	return out
}

// exportFiles is the "via files" API: links to the current snapshot's files.
func (s *Server) exportFiles(x *exchange, kind exportKind) {
	q, ok := x.queryParams("sasvalidhours")
	if !ok {
		return
	}
	hours := 1
	if v, has := q["sasvalidhours"]; has {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 6 {
			x.mdeError(http.StatusBadRequest, "InvalidInput", "Invalid input sasValidHours: it must be a whole number from 1 to 6.")
			return
		}
		hours = n
	}
	now := s.now()
	snap := s.tenant.snapshot(now)
	files := snap.exportFiles(kind)
	st, se := now.Add(-5*time.Minute).UTC().Truncate(time.Second), now.Add(time.Duration(hours)*time.Hour).UTC().Truncate(time.Second)
	b := []byte(`{"@odata.context":`)
	b = appendString(b, x.baseURL()+"/api/$metadata#microsoft.windowsDefenderATP.api.ExportFilesResponse")
	b = append(b, `,"exportFiles":[`...)
	for i, name := range files.names {
		if i > 0 {
			b = append(b, ',')
		}
		path := "/tvm-export/" + snap.at.Format(timePathLayout) + exportFolders[kind] + "/json/OrgId=" + s.tenant.ID() + "/" + name
		b = appendString(b, x.baseURL()+path+"?"+s.sas(path, st, se))
	}
	b = append(b, `],"generatedTime":`...)
	b = appendTime(b, snap.at)
	b = append(b, '}')
	x.odata(http.StatusOK, b)
}

// serverTVM is the Server's state for the TVM APIs.
type serverTVM struct {
	sasOnce   sync.Once
	sasSecret []byte // signs the blob links
}

func (s *Server) sasKey() []byte {
	s.tvm.sasOnce.Do(func() {
		s.tvm.sasSecret = make([]byte, 32)
		rand.Read(s.tvm.sasSecret)
	})
	return s.tvm.sasSecret
}

// sas returns a SAS query string for a read of path valid from st to se.
func (s *Server) sas(path string, st, se time.Time) string {
	sv, sts, ses := "2019-12-12", st.Format(time.RFC3339), se.Format(time.RFC3339)
	return "sv=" + sv + "&st=" + url.QueryEscape(sts) + "&se=" + url.QueryEscape(ses) + "&sr=b&sp=r&sig=" + url.QueryEscape(s.sign(path, sts, ses, sv))
}

func (s *Server) sign(path, st, se, sv string) string {
	mac := hmac.New(sha256.New, s.sasKey())
	mac.Write([]byte("r\n" + st + "\n" + se + "\n/blob/tvmexport" + path + "\n\n\nhttps\n" + sv + "\nb"))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// serveBlob serves an export file to a holder of a valid, unexpired link.
func (s *Server) serveBlob(x *exchange) {
	q := x.r.URL.Query()
	path := x.r.URL.Path
	st, se, sv, sig := q.Get("st"), q.Get("se"), q.Get("sv"), q.Get("sig")
	if sig == "" || q.Get("sp") != "r" || q.Get("sr") != "b" {
		x.blobError(http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.", "")
		return
	}
	if !hmac.Equal([]byte(sig), []byte(s.sign(path, st, se, sv))) {
		x.blobError(http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
			"Signature did not match. String to sign used was r\n"+st+"\n"+se+"\n/blob/tvmexport"+path)
		return
	}
	now := s.now().UTC()
	expiry, err := time.Parse(time.RFC3339, se)
	if err != nil || !now.Before(expiry) {
		x.blobError(http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
			"Signed expiry time ["+expiry.Format(http.TimeFormat)+"] has to be after current time ["+now.Format(http.TimeFormat)+"]")
		return
	}
	at, err := time.Parse(timePathLayout, x.param("date")+"/"+x.param("time")+"/")
	kind := -1
	for k, f := range exportFolders {
		if f == x.param("kind") {
			kind = k
		}
	}
	snap := s.tenant.snapshotAt(at)
	if err != nil || kind < 0 || snap == nil || x.param("org") != "OrgId="+s.tenant.ID() {
		x.blobError(http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	files := snap.exportFiles(exportKind(kind))
	i := -1
	for k, n := range files.names {
		if n == x.param("file") {
			i = k
		}
	}
	if i < 0 {
		x.blobError(http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	data := files.data[i]
	h := x.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", fmt.Sprintf(`"0x8D%X"`, snap.at.UnixNano()+int64(i)))
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-version", "2019-12-12")
	h.Set("x-ms-request-id", strings.Trim(x.target, "|."))
	if f := x.fault; f != nil && (f.TruncateBody || f.MalformedBody) {
		x.status = http.StatusOK
		body := data
		if f.MalformedBody {
			body = malform(data)
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		x.w.WriteHeader(http.StatusOK)
		if f.TruncateBody {
			body = body[:len(body)/2]
		}
		x.w.Write(body)
		return
	}
	x.status = http.StatusOK
	if x.r.Header.Get("Range") != "" {
		x.status = http.StatusPartialContent
	}
	http.ServeContent(x.w, x.r, "", snap.at, bytes.NewReader(data))
}

// blobError writes an Azure Storage error: XML, with x-ms-error-code.
func (x *exchange) blobError(status int, code, message, detail string) {
	h := x.w.Header()
	h.Set("x-ms-error-code", code)
	h.Set("x-ms-version", "2019-12-12")
	reqID := strings.Trim(x.target, "|.")
	h.Set("x-ms-request-id", reqID)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + xmlEscape(message) +
		"\nRequestId:" + reqID + "\nTime:" + x.s.now().UTC().Format("2006-01-02T15:04:05.0000000Z") + "</Message>")
	if detail != "" {
		tag := "AuthenticationErrorDetail"
		if code != "AuthenticationFailed" {
			tag = "Detail"
		}
		b.WriteString("<" + tag + ">" + xmlEscape(detail) + "</" + tag + ">")
	}
	b.WriteString("</Error>")
	x.send(status, "application/xml", []byte(b.String()))
}

// injectedBlobError answers an injected failure as blob storage would.
func (x *exchange) injectedBlobError(status int) {
	switch status {
	case http.StatusForbidden:
		now := x.s.now().UTC()
		x.blobError(status, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
			"Signed expiry time ["+now.Add(-time.Minute).Format(http.TimeFormat)+"] has to be after current time ["+now.Format(http.TimeFormat)+"]")
	case http.StatusNotFound:
		x.blobError(status, "BlobNotFound", "The specified blob does not exist.", "")
	case http.StatusInternalServerError:
		x.blobError(status, "InternalError", "Server encountered an internal error. Please try again after some time.", "")
	case http.StatusServiceUnavailable:
		x.blobError(status, "ServerBusy", "The server is busy.", "")
	default:
		code, msg := errorCodeFor(status)
		x.blobError(status, code, msg, "")
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// controlPrepareExports is POST /_emulator/exports: encode the current
// snapshot's export files now (the benchmark does this before it starts
// the clock, as the live service has its files ready before it is asked).
func (s *Server) controlPrepareExports(x *exchange) {
	start := time.Now()
	rows := s.PrepareExports()
	x.json(http.StatusOK, map[string]any{
		"snapshotTime": snapshotTime(s.now()).Format(time.RFC3339), "rows": rows, "seconds": time.Since(start).Seconds(),
	})
}
