package emulator

import (
	"archive/zip"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Downloads: the investigation package behind getPackageUri and the live
// response results behind GetLiveResponseResultDownloadLink. The live
// service hands out pre-signed links to other hosts
// (userrequests-us.securitycenter.windows.com/safedownload/…?token=…, a blob
// store's …/CustomPlaybookCommandOutput/…?se=…&sig=…); the emulator serves
// the same paths on its own host, signed with a key of its own, without a
// bearer token, and refuses them once expired.

func (s *Server) addDownloadRoutes() {
	add := func(template string, h func(*exchange)) {
		s.routes.add(&route{method: "GET", template: template, surface: surfaceFiles, handle: h})
	}
	add("/safedownload/WDATP_Investigation_Package.zip", s.downloadPackage)
	add("/investigation-actions-data/{id}/CustomPlaybookCommandOutput/{name}", s.downloadResult)
}

func (r *responseState) sign(msg string) string {
	h := hmac.New(sha256.New, r.signKey)
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (r *responseState) verify(msg, sig string) bool {
	return hmac.Equal([]byte(r.sign(msg)), []byte(sig))
}

func (s *Server) packageLink(x *exchange, a *machineAction, now time.Time) string {
	payload := a.ID + "." + strconv.FormatInt(now.Add(packageLinkTTL).Unix(), 10)
	token := payload + "." + s.tenant.response().sign("package|"+payload)
	return x.baseURL() + "/safedownload/WDATP_Investigation_Package.zip?token=" + url.QueryEscape(token)
}

const sasTime = "2006-01-02T15:04:05Z"

func (s *Server) resultLink(x *exchange, a *machineAction, i int, now time.Time) string {
	se := now.Add(resultLinkTTL).UTC().Format(sasTime)
	name := strconv.Itoa(i) + "_" + hex.EncodeToString([]byte(a.ID[:8]))
	sig := s.tenant.response().sign("result|" + a.ID + "|" + name + "|" + se)
	return x.baseURL() + "/investigation-actions-data/" + a.ID + "/CustomPlaybookCommandOutput/" + name +
		"?se=" + url.QueryEscape(se) + "&sp=r&sv=2019-07-07&sr=b&sig=" + url.QueryEscape(sig)
}

// blobDenied answers a refused blob download as Azure Storage does.
func (x *exchange) blobDenied(detail string) {
	now := x.s.now().UTC()
	body := `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. ` +
		`Make sure the value of Authorization header is formed correctly including the signature.` + "\n" +
		"RequestId:" + strings.Trim(x.target, "|.") + "\nTime:" + now.Format("2006-01-02T15:04:05.0000000Z") +
		`</Message><AuthenticationErrorDetail>` + detail + `</AuthenticationErrorDetail></Error>`
	x.send(http.StatusForbidden, "application/xml", []byte(body))
}

func (s *Server) downloadPackage(x *exchange) {
	token := x.r.URL.Query().Get("token")
	parts := strings.Split(token, ".")
	r := s.tenant.response()
	if len(parts) != 3 || !r.verify("package|"+parts[0]+"."+parts[1], parts[2]) {
		x.send(http.StatusForbidden, "text/plain; charset=utf-8", []byte("The download token is not valid."))
		return
	}
	exp, _ := strconv.ParseInt(parts[1], 10, 64)
	now := s.now()
	if now.Unix() > exp {
		x.send(http.StatusForbidden, "text/plain; charset=utf-8", []byte("The download link has expired; request a new one with getPackageUri."))
		return
	}
	a := r.actionByIDAt(parts[0], now)
	if a == nil {
		x.empty(http.StatusNotFound)
		return
	}
	x.w.Header().Set("Content-Disposition", `attachment; filename="WDATP_Investigation_Package.zip"`)
	x.send(http.StatusOK, "application/zip", investigationPackage(a, s.tenant.findMachine(a.MachineID)))
}

func (s *Server) downloadResult(x *exchange) {
	q := x.r.URL.Query()
	id, name, se := x.param("id"), x.param("name"), q.Get("se")
	r := s.tenant.response()
	if !r.verify("result|"+id+"|"+name+"|"+se, q.Get("sig")) {
		x.blobDenied("Signature did not match. String to sign used was r")
		return
	}
	exp, err := time.Parse(sasTime, se)
	now := s.now().UTC()
	if err != nil || now.After(exp) {
		x.blobDenied(fmt.Sprintf("Signature not valid in the specified time frame: Start [] - Expiry [%s] - Current [%s]",
			exp.Format(http.TimeFormat), now.Format(http.TimeFormat)))
		return
	}
	idx, _, _ := strings.Cut(name, "_")
	i, _ := strconv.Atoi(idx)
	a := r.actionByIDAt(id, now)
	if a == nil || i < 0 || i >= len(a.Commands) {
		x.empty(http.StatusNotFound)
		return
	}
	x.send(http.StatusOK, "application/octet-stream", liveResponseResult(a, i, s.tenant.findMachine(a.MachineID)))
}

// zipFiles builds a zip archive of name/content pairs, stamped with t.
func zipFiles(t time.Time, files ...[2]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f[0], Method: zip.Deflate, Modified: t})
		if err != nil {
			panic(err) // writing to memory
		}
		w.Write([]byte(f[1]))
	}
	zw.Close()
	return buf.Bytes()
}

var packageProcesses = []string{"System", "smss.exe", "csrss.exe", "wininit.exe", "services.exe", "lsass.exe", "svchost.exe",
	"MsMpEng.exe", "MsSense.exe", "SenseIR.exe", "explorer.exe", "RuntimeBroker.exe", "Teams.exe", "msedge.exe", "OneDrive.exe"}

// investigationPackage is the zip a CollectInvestigationPackage action
// produces: the folders of a real package, with content derived from the
// machine, the same bytes every time for the same action.
func investigationPackage(a *machineAction, m *machine) []byte {
	name, osName := a.ComputerDNSName, "unknown"
	if m != nil {
		osName = m.OSPlatform + " " + m.Version.V
	}
	var procs strings.Builder
	procs.WriteString("ProcessName,Id,SessionId\r\n")
	for i, p := range packageProcesses {
		fmt.Fprintf(&procs, "%s,%d,%d\r\n", p, 4+i*412, min(i, 1))
	}
	var conns strings.Builder
	conns.WriteString("  Proto  Local Address          Foreign Address        State           PID\r\n")
	for i := range 12 {
		fmt.Fprintf(&conns, "  TCP    10.0.0.%d:%d        20.190.%d.%d:443      ESTABLISHED     %d\r\n", 10+i, 49152+i*7, i, 20+i*3, 4+i*412)
	}
	return zipFiles(a.DoneAt,
		[2]string{"README.txt", fmt.Sprintf("Investigation package of %s (machine %s), collected by machine action %s.\r\nEmulated by mdebridge.\r\n", name, a.MachineID, a.ID)},
		[2]string{"System Information/SystemInformation.txt", fmt.Sprintf("Host Name: %s\r\nOS Name: %s\r\nCollected: %s\r\n", name, osName, a.DoneAt.UTC().Format(time.RFC3339))},
		[2]string{"Processes/processes.csv", procs.String()},
		[2]string{"Network connections/ActiveNetConnections.txt", conns.String()},
		[2]string{"Scheduled tasks/scheduledtasks.csv", "TaskName,Next Run Time,Status\r\n\\Microsoft\\Windows\\Defrag\\ScheduledDefrag,N/A,Ready\r\n"},
	)
}

// liveResponseResult is the result file of live response command i: for
// RunScript the JSON transcript of docs/liveresponse-runscript-transcript.json,
// for GetFile the file (a zip when the path names one).
func liveResponseResult(a *machineAction, i int, m *machine) []byte {
	c := a.Commands[i]
	host := a.ComputerDNSName
	switch c.Type {
	case "RunScript":
		script, args := c.param("ScriptName"), c.param("Args")
		out := fmt.Sprintf("Transcript started, output file is C:\\ProgramData\\Microsoft\\Windows Defender Advanced Threat Protection\\Temp\\PSScriptOutputs\\PSScript_Transcript_%s.txt\n", a.ID)
		out += fmt.Sprintf("%s ran on %s with arguments %q\n", script, host, args)
		if m != nil {
			out += fmt.Sprintf("OS: %s %s\n", m.OSPlatform, m.Version.V)
		}
		return marshalWire(struct {
			ScriptName   string `json:"script_name"`
			ExitCode     int    `json:"exit_code"`
			ScriptOutput string `json:"script_output"`
			ScriptErrors string `json:"script_errors"`
		}{script, 0, out, ""})
	default:
		p := c.param("Path")
		base := path.Base(strings.ReplaceAll(p, `\`, "/"))
		content := fmt.Sprintf("Content of %s collected from %s by machine action %s.\r\n", p, host, a.ID)
		content += strings.Repeat("emulated file data\r\n", 64)
		if strings.HasSuffix(strings.ToLower(base), ".zip") {
			return zipFiles(a.DoneAt, [2]string{strings.TrimSuffix(base, path.Ext(base)), content})
		}
		return []byte(content)
	}
}

// defaultLibrary is the live response library of a new tenant: the scripts
// and files RunScript and PutFile may name.
func defaultLibrary() []string {
	return []string{"minidump.ps1", "triage.ps1", "collect-logs.ps1", "list-processes.ps1", "get-file-hash.ps1",
		"collect-logs.sh", "triage.sh", "cleanup-tool.exe", "sysinternals.zip"}
}

func (r *responseState) libraryFiles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.library...)
}

func (r *responseState) addLibraryFile(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.library {
		if strings.EqualFold(f, name) {
			return
		}
	}
	r.library = append(r.library, name)
}
