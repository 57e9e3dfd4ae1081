package sink_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// events makes n events of incidents 1 to 3, with real bodies.
func events(from, n int) []mdebridge.StoredEvent {
	var out []mdebridge.StoredEvent
	for i := from; i < from+n; i++ {
		a := &mdebridge.Alert{ID: fmt.Sprintf("da%d_1", i), Title: "Suspicious | thing = odd\\", Severity: "High", Category: "Execution",
			MachineID: "m1", ComputerDNSName: "pc1", LastUpdateTime: t0.Add(time.Duration(i) * time.Second),
			RelatedUser: &mdebridge.AlertUser{UserName: "jchen", DomainName: "CONTOSO"},
			Evidence:    []mdebridge.Evidence{{EntityType: "Ip", IPAddress: "185.1.2.3"}, {EntityType: "File", SHA1: "ab12"}},
			Raw:         json.RawMessage(fmt.Sprintf(`{"id":"da%d_1","title":"Suspicious"}`, i))}
		inc := mdebridge.Incident{ID: int64(i%3 + 1), Key: "alert:" + a.ID, Title: a.Title, Severity: "High", Status: "New", MDEIncidentID: 77}
		ev := mdebridge.NewIncidentEvent(mdebridge.EventInput{Seq: int64(i), Action: mdebridge.ActionIncidentCreated, At: t0, Incident: inc, Alert: a})
		body, _ := json.Marshal(ev)
		out = append(out, mdebridge.StoredEvent{Seq: int64(i), ID: ev.Event.ID, IncidentID: inc.ID, AlertID: a.ID, Kind: "create",
			Origin: "mde", CreatedAt: t0, Body: body})
	}
	return out
}

func seqOf(t *testing.T, line []byte) int64 {
	t.Helper()
	var ev struct {
		Event struct{ Sequence int64 } `json:"event"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return ev.Event.Sequence
}

func fileSeqs(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l != "" {
			out = append(out, seqOf(t, []byte(l)))
		}
	}
	return out
}

func TestFileAppendsAndResumesAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "incidents.jsonl")
	f, err := sink.NewFile(sink.FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Delivered(); n != 0 || err != nil {
		t.Fatalf("a new file holds %d, %v", n, err)
	}
	if d, err := f.Deliver(t.Context(), events(1, 10)); d.Handled != 10 || err != nil {
		t.Fatal(d, err)
	}
	f.Close()
	// Killed while writing event 11: half a line.
	half := events(11, 1)[0].Body
	fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fh.Write(half[:len(half)/2])
	fh.Close()
	f, err = sink.NewFile(sink.FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Delivered(); n != 10 || err != nil {
		t.Fatalf("after the crash the file holds %d, %v", n, err)
	}
	f.Deliver(t.Context(), events(11, 2))
	want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if got := fileSeqs(t, path); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("file holds %v", got)
	}
}

func TestFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents.jsonl")
	clock := t0
	size := int64(len(events(1, 1)[0].Body) + 1)
	f, err := sink.NewFile(sink.FileOptions{Path: path, MaxBytes: 3*size + 10, MaxFiles: 2, Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 1; i <= 10; i += 2 {
		if d, err := f.Deliver(t.Context(), events(i, 2)); d.Handled != 2 || err != nil {
			t.Fatal(d, err)
		}
	}
	rotated, _ := filepath.Glob(filepath.Join(dir, "incidents-*.jsonl"))
	if len(rotated) != 2 {
		t.Fatalf("rotated files %v, want the 2 newest kept", rotated)
	}
	var all []int64
	for _, p := range append(rotated, path) {
		all = append(all, fileSeqs(t, p)...)
	}
	if fmt.Sprint(all) != "[4 5 6 7 8 9 10]" {
		t.Errorf("kept %v", all)
	}
	// Rotated just before a crash: the new file is empty, the last event
	// is in the newest rotated file.
	os.WriteFile(path, nil, 0o640)
	if n, err := f.Delivered(); n != 9 || err != nil {
		t.Errorf("with an empty current file: %d, %v", n, err)
	}
}

func FuzzFileRecovery(f *testing.F) {
	f.Add([]byte(`{"event":{"sequence":3}}` + "\n" + `{"event":{"seq`))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(`{"event":{"sequence":"x"}}` + "\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "f.jsonl")
		os.WriteFile(path, content, 0o640)
		s, err := sink.NewFile(sink.FileOptions{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Delivered() // any answer, no panic
		if _, err := s.Deliver(context.Background(), events(1, 1)); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if !strings.HasSuffix(string(data), "\n") || seqOf(t, []byte(lines[len(lines)-1])) != 1 {
			t.Fatalf("after recovery and one event the file ends %q", data[max(0, len(data)-80):])
		}
	})
}

func TestWriter(t *testing.T) {
	var b strings.Builder
	w := sink.NewWriter("", &b)
	if d, err := w.Deliver(t.Context(), events(1, 3)); d.Handled != 3 || err != nil || w.Name() != "stdout" {
		t.Fatal(d, err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 || seqOf(t, []byte(lines[2])) != 3 {
		t.Errorf("wrote %q", b.String())
	}
}

// handlerTransport serves requests in memory, for synctest.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { t.h.ServeHTTP(rec, r); close(done) }()
	select {
	case <-done:
		return rec.Result(), nil
	case <-r.Context().Done():
		<-done
		return nil, r.Context().Err()
	}
}

// receiver records what a webhook receives and answers as told.
type receiver struct {
	mu     sync.Mutex
	got    []int64 // sequence numbers, in arrival order
	tries  map[string]int
	answer func(seq int64, try int) int
	block  bool // hang until the request is cancelled
	key    []byte
	t      *testing.T
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.block {
		<-req.Context().Done()
		return
	}
	seq, _ := strconv.ParseInt(req.Header.Get(sink.HeaderSequence), 10, 64)
	if sig := sink.Sign(r.key, req.Header.Get(sink.HeaderTimestamp), body); len(r.key) > 0 && sig != req.Header.Get(sink.HeaderSignature) {
		r.t.Errorf("event %d: signature %q, want %q", seq, req.Header.Get(sink.HeaderSignature), sig)
	}
	if req.Header.Get(sink.HeaderEventID) == "" || req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Authorization") != "Bearer t" {
		r.t.Errorf("headers %v", req.Header)
	}
	r.mu.Lock()
	r.tries[req.Header.Get(sink.HeaderEventID)]++
	try := r.tries[req.Header.Get(sink.HeaderEventID)]
	r.mu.Unlock()
	status := 200
	if r.answer != nil {
		status = r.answer(seq, try)
	}
	if status == 429 {
		w.Header().Set("Retry-After", "7")
	}
	w.WriteHeader(status)
	if status < 300 {
		r.mu.Lock()
		r.got = append(r.got, seq)
		r.mu.Unlock()
	}
}

func newWebhook(t *testing.T, r *receiver, dead string) *sink.Webhook {
	t.Helper()
	r.t, r.tries = t, map[string]int{}
	w, err := sink.NewWebhook(sink.WebhookOptions{URL: "https://siem.example/hook/s3cr3t?code=t0ken", HMACKey: r.key, Headers: map[string]string{"Authorization": "Bearer t"},
		MaxAttempts: 3, Timeout: 5 * time.Second, DeadLetterPath: dead, HTTPClient: &http.Client{Transport: handlerTransport{r}}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func deadLetters(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestWebhookSignsRetriesAndKeepsIncidentOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead := filepath.Join(t.TempDir(), "dead.jsonl")
		r := &receiver{key: []byte("k3y"), answer: func(seq int64, try int) int {
			switch {
			case seq == 2 && try < 3:
				return 503
			case seq == 5 && try == 1:
				return 429
			}
			return 200
		}}
		w := newWebhook(t, r, dead)
		start := time.Now()
		d, err := w.Deliver(t.Context(), events(1, 9))
		if err != nil || d.Handled != 9 || d.DeadLettered != 0 {
			t.Fatalf("%+v %v", d, err)
		}
		if el := time.Since(start); el < 7*time.Second {
			t.Errorf("Retry-After 7 not honoured: %v", el)
		}
		// Per incident (seq mod 3), in order despite the retries.
		last := map[int64]int64{}
		for _, s := range r.got {
			if s < last[s%3] {
				t.Errorf("incident %d: %d after %d", s%3+1, s, last[s%3])
			}
			last[s%3] = s
		}
		if len(r.got) != 9 || deadLetters(t, dead) != nil {
			t.Errorf("received %v", r.got)
		}
	})
}

func TestWebhookDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		for _, tc := range []struct {
			name     string
			r        *receiver
			attempts float64
		}{
			{"500 every time", &receiver{answer: func(int64, int) int { return 500 }}, 3},
			{"400: no retry", &receiver{answer: func(int64, int) int { return 400 }}, 1},
			{"hanging", &receiver{block: true}, 3},
		} {
			dead := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			w := newWebhook(t, tc.r, dead)
			d, err := w.Deliver(t.Context(), events(1, 2))
			if err != nil || d.Handled != 2 || d.DeadLettered != 2 {
				t.Fatalf("%s: %+v %v", tc.name, d, err)
			}
			dl := deadLetters(t, dead)
			if len(dl) != 2 || dl[0]["attempts"] != tc.attempts || dl[0]["error"] == "" || dl[0]["sink"] != "webhook" {
				t.Errorf("%s: dead letters %v", tc.name, dl)
			}
			if e := fmt.Sprint(dl[0]["error"]); strings.Contains(e, "s3cr3t") || strings.Contains(e, "t0ken") {
				t.Errorf("%s: the dead letter quotes the webhook's secret path: %s", tc.name, e)
			}
			seqs := map[float64]bool{}
			for _, l := range dl {
				ev, _ := l["event"].(map[string]any)["event"].(map[string]any)
				seqs[ev["sequence"].(float64)] = true
			}
			if !seqs[1] || !seqs[2] {
				t.Errorf("%s: the dead letters do not hold the events: %v", tc.name, dl)
			}
		}
	})
}

func TestWebhookStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{answer: func(seq int64, try int) int {
			if seq == 1 {
				return 503 // keeps incident 2's lane retrying
			}
			return 200
		}}
		w := newWebhook(t, r, filepath.Join(t.TempDir(), "dead.jsonl"))
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		d, err := w.Deliver(ctx, events(1, 6))
		if err == nil || d.Handled != 0 || d.DeadLettered != 0 {
			t.Errorf("cut short: %+v %v", d, err)
		}
	})
}

var rfc5424 = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) mdebridge (\d+) incident \[mdebridge@32473 seq="(\d+)" id="([0-9a-f]+)" kind="create" origin="mde" incident="(\d)" alert="(da\d+_1)"\] (.*)$`)

func TestSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := sink.NewSyslog(sink.SyslogOptions{Address: pc.LocalAddr().String(), Hostname: "bridge host"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, err := s.Deliver(t.Context(), events(1, 2)); d.Handled != 2 || err != nil {
		t.Fatal(d, err)
	}
	buf := make([]byte, 70000)
	for want := int64(1); want <= 2; want++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := rfc5424.FindStringSubmatch(string(buf[:n]))
		if m == nil {
			t.Fatalf("not RFC 5424: %q", buf[:n])
		}
		if m[1] != "131" || m[3] != "bridgehost" || m[5] != strconv.FormatInt(want, 10) || seqOf(t, []byte(m[9])) != want {
			t.Errorf("message %q", buf[:n])
		}
		if _, err := time.Parse(time.RFC3339Nano, m[2]); err != nil {
			t.Errorf("timestamp %q: %v", m[2], err)
		}
	}
	for _, bad := range []sink.SyslogOptions{{}, {Address: "x:1", Network: "sctp"}, {Address: "x:1", Format: "leef"}, {Address: "x:1", Facility: 24}} {
		if _, err := sink.NewSyslog(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// frames reads octet-counted syslog frames from c.
func frames(t *testing.T, c net.Conn, n int) []string {
	t.Helper()
	br := bufio.NewReader(c)
	var out []string
	for range n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		lenText, err := br.ReadString(' ')
		if err != nil {
			t.Fatal(err)
		}
		size, err := strconv.Atoi(strings.TrimSpace(lenText))
		if err != nil {
			t.Fatalf("frame length %q", lenText)
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(msg))
	}
	return out
}

func TestSyslogTCPFramingAndCEF(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := sink.NewSyslog(sink.SyslogOptions{Network: "tcp", Address: ln.Addr().String(), Format: "cef"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		got = frames(t, c, 3)
	})
	if d, err := s.Deliver(t.Context(), events(1, 3)); d.Handled != 3 || err != nil {
		t.Fatal(d, err)
	}
	wg.Wait()
	if len(got) != 3 {
		t.Fatalf("%d frames", len(got))
	}
	m := rfc5424.FindStringSubmatch(got[0])
	if m == nil {
		t.Fatalf("not RFC 5424: %q", got[0])
	}
	cef := m[9]
	wantStart := `CEF:0|Microsoft|Defender for Endpoint|mdebridge|incident-created|Suspicious \| thing = odd\\|8|`
	if !strings.HasPrefix(cef, wantStart) {
		t.Errorf("CEF header:\n%s\nwant\n%s", cef, wantStart)
	}
	for _, want := range []string{"externalId=da1_1", "dhost=pc1", "duser=jchen", "src=185.1.2.3", "fileHash=ab12", "cs1=77", "cn1=1", "cs3=New"} {
		if !strings.Contains(cef, want) {
			t.Errorf("CEF lacks %s: %s", want, cef)
		}
	}
}

func TestSyslogTLSAndReconnect(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := sink.NewSyslog(sink.SyslogOptions{Network: "tls", Address: ln.Addr().String(),
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	accepted := make(chan []string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got := frames(t, c, 1+i) // the first connection is closed after one message
			c.Close()
			accepted <- got
		}
	})
	if d, err := s.Deliver(t.Context(), events(1, 1)); d.Handled != 1 || err != nil {
		t.Fatal(d, err)
	}
	first := <-accepted
	// The receiver closed the connection: writes fail until the sink
	// dials again, and then everything not handled is sent.
	handled := 0
	for try := 0; try < 20 && handled < 2; try++ {
		d, _ := s.Deliver(t.Context(), events(2+handled, 2-handled))
		handled += d.Handled
	}
	wg.Wait()
	second := <-accepted
	if len(first) != 1 || len(second) != 2 || rfc5424.FindStringSubmatch(second[1])[5] != "3" {
		t.Errorf("first connection %d messages, second %d", len(first), len(second))
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
