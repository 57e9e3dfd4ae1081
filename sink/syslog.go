package sink

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
)

// SyslogOptions configure a syslog sink.
type SyslogOptions struct {
	Name    string // default "syslog"
	Network string // udp, tcp or tls (default udp)
	Address string // host:port, required
	// Format of the message: json (the event, default) or cef (ArcSight
	// Common Event Format).
	Format string
	// Facility is the syslog facility (default 16, local0).
	Facility int
	AppName  string // default "mdebridge"
	Hostname string // default the host's name
	// TLSConfig is used with Network tls (default: the system's roots).
	TLSConfig *tls.Config
	// Timeout bounds connecting and each write (default 10s).
	Timeout time.Duration
	// MaxMessageSize bounds a UDP message (default 65000 bytes): a larger
	// JSON event is sent without the raw MDE alert (its ECS fields and the
	// incident stay).
	MaxMessageSize int
	Now            func() time.Time
}

// Syslog sends each event as an RFC 5424 message: over UDP one datagram
// each, over TCP and TLS framed by octet counting (RFC 6587, RFC 5425).
// A connection the receiver closed is dialled again before the next
// batch; a write that fails is retried on a new connection. Syslog has no
// acknowledgements: over UDP a datagram can be lost in the network, and
// over TCP a receiver that closes the connection in the middle of a batch
// can drop what was in flight. Use TCP or TLS, or the webhook or file
// sinks, where every event must arrive.
type Syslog struct {
	opts SyslogOptions
	pid  string
	mu   sync.Mutex
	conn net.Conn
}

// NewSyslog validates the options and returns the sink; it connects on
// the first delivery.
func NewSyslog(o SyslogOptions) (*Syslog, error) {
	if o.Name == "" {
		o.Name = "syslog"
	}
	if o.Network == "" {
		o.Network = "udp"
	}
	if o.Format == "" {
		o.Format = "json"
	}
	switch {
	case o.Address == "":
		return nil, fmt.Errorf("sink %s: Address is required", o.Name)
	case o.Network != "udp" && o.Network != "tcp" && o.Network != "tls":
		return nil, fmt.Errorf("sink %s: network %q is not udp, tcp or tls", o.Name, o.Network)
	case o.Format != "json" && o.Format != "cef":
		return nil, fmt.Errorf("sink %s: format %q is not json or cef", o.Name, o.Format)
	case o.Facility < 0 || o.Facility > 23:
		return nil, fmt.Errorf("sink %s: facility %d is not 0 to 23", o.Name, o.Facility)
	}
	if o.Facility == 0 {
		o.Facility = 16
	}
	if o.AppName == "" {
		o.AppName = "mdebridge"
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	o.Hostname = sdName(o.Hostname, 255)
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 65000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Syslog{opts: o, pid: strconv.Itoa(os.Getpid())}, nil
}

func (s *Syslog) Name() string { return s.opts.Name }

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// dial returns the connection, dialling a new one when there is none or
// the receiver has closed it (receivers never send, so a read that does
// not time out means the end).
func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	if s.conn != nil && s.opts.Network != "udp" {
		s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		_, err := s.conn.Read(b[:])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return s.conn, nil
		}
		s.conn.Close()
		s.conn = nil
	}
	if s.conn != nil {
		return s.conn, nil
	}
	d := &net.Dialer{Timeout: s.opts.Timeout}
	var c net.Conn
	var err error
	if s.opts.Network == "tls" {
		cfg := s.opts.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", s.opts.Address)
	} else {
		c, err = d.DialContext(ctx, s.opts.Network, s.opts.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("sink %s: connect to %s: %w", s.opts.Name, s.opts.Address, err)
	}
	s.conn = c
	return c, nil
}

// Deliver sends the events in order; on a write error it drops the
// connection and reports how many it sent.
func (s *Syslog) Deliver(ctx context.Context, evs []mdebridge.StoredEvent) (mdebridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.dial(ctx)
	if err != nil {
		return mdebridge.Delivery{}, err
	}
	for i, e := range evs {
		msg, err := s.message(e)
		if err != nil {
			return mdebridge.Delivery{Handled: i}, err
		}
		if s.opts.Network != "udp" {
			msg = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
		}
		c.SetWriteDeadline(time.Now().Add(s.opts.Timeout))
		if _, err := c.Write(msg); err != nil {
			c.Close()
			s.conn = nil
			return mdebridge.Delivery{Handled: i}, fmt.Errorf("sink %s: write to %s: %w", s.opts.Name, s.opts.Address, err)
		}
	}
	return mdebridge.Delivery{Handled: len(evs)}, nil
}

// eventFields are what a syslog message takes from an event.
type eventFields struct {
	Timestamp time.Time `json:"@timestamp"`
	Message   string    `json:"message"`
	Event     struct {
		ID        string   `json:"id"`
		Sequence  int64    `json:"sequence"`
		Action    string   `json:"action"`
		Category  []string `json:"category"`
		Reference string   `json:"reference"`
	} `json:"event"`
	Rule    struct{ ID, Name, Category string } `json:"rule"`
	Host    struct{ ID, Hostname string }       `json:"host"`
	User    struct{ Name, Domain string }       `json:"user"`
	Related struct{ IP, Hash []string }         `json:"related"`
	Threat  struct {
		Technique struct{ ID []string } `json:"technique"`
	} `json:"threat"`
	Observer  struct{ Name string } `json:"observer"`
	Mdebridge struct {
		Event struct {
			Kind   string `json:"kind"`
			Origin string `json:"origin"`
		} `json:"event"`
		Incident mdebridge.Incident `json:"incident"`
		Alert    struct {
			ID string `json:"id"`
		} `json:"alert"`
	} `json:"mdebridge"`
}

// syslogSeverity maps an incident's severity to a syslog severity.
func syslogSeverity(s string) int {
	switch strings.ToLower(s) {
	case "high":
		return 3 // error
	case "medium":
		return 4 // warning
	case "low":
		return 5 // notice
	}
	return 6 // informational
}

// cefSeverity maps an incident's severity to CEF's 0 to 10.
func cefSeverity(s string) int {
	switch strings.ToLower(s) {
	case "high":
		return 8
	case "medium":
		return 5
	case "low":
		return 3
	}
	return 1
}

// message renders one RFC 5424 message:
// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG.
func (s *Syslog) message(e mdebridge.StoredEvent) ([]byte, error) {
	var f eventFields
	if err := json.Unmarshal(e.Body, &f); err != nil {
		return nil, fmt.Errorf("sink %s: event %d: %w", s.opts.Name, e.Seq, err)
	}
	inc := f.Mdebridge.Incident
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %s incident ", s.opts.Facility*8+syslogSeverity(inc.Severity),
		e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), s.opts.Hostname, sdName(s.opts.AppName, 48), s.pid)
	fmt.Fprintf(&b, `[mdebridge@32473 seq="%d" id="%s" kind="%s" origin="%s" incident="%d" alert="%s"] `, e.Seq, sdValue(e.ID),
		sdValue(e.Kind), sdValue(e.Origin), inc.ID, sdValue(f.Mdebridge.Alert.ID))
	if s.opts.Format == "cef" {
		b.WriteString(cef(f, e))
		return []byte(b.String()), nil
	}
	body := e.Body
	if s.opts.Network == "udp" && b.Len()+len(body) > s.opts.MaxMessageSize {
		body = withoutAlert(body)
	}
	return append([]byte(b.String()), body...), nil
}

// withoutAlert drops mdebridge.alert from an event, for a datagram that
// would not fit.
func withoutAlert(body []byte) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(body, &ev) != nil {
		return body
	}
	var md map[string]json.RawMessage
	if json.Unmarshal(ev["mdebridge"], &md) != nil {
		return body
	}
	delete(md, "alert")
	md["alertOmitted"] = json.RawMessage("true")
	ev["mdebridge"], _ = json.Marshal(md)
	out, err := json.Marshal(ev)
	if err != nil {
		return body
	}
	return out
}

// cef renders the event in ArcSight Common Event Format:
// CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension.
func cef(f eventFields, e mdebridge.StoredEvent) string {
	inc := f.Mdebridge.Incident
	sig := f.Rule.ID
	if sig == "" {
		sig = f.Event.Action
	}
	name := f.Message
	if name == "" {
		name = inc.Title
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CEF:0|Microsoft|Defender for Endpoint|mdebridge|%s|%s|%d|", cefHeader(sig), cefHeader(name), cefSeverity(inc.Severity))
	ext := []struct{ k, v string }{
		{"rt", strconv.FormatInt(f.Timestamp.UnixMilli(), 10)},
		{"externalId", f.Mdebridge.Alert.ID},
		{"act", f.Event.Action},
		{"cat", f.Rule.Category},
		{"deviceExternalId", f.Host.ID},
		{"dhost", f.Host.Hostname},
		{"duser", f.User.Name},
		{"duid", f.User.Domain},
		{"src", first(f.Related.IP)},
		{"fileHash", first(f.Related.Hash)},
		{"request", f.Event.Reference},
		{"deviceProcessName", f.Observer.Name},
		{"cs1Label", "mdeIncidentId"}, {"cs1", formatNonZero(inc.MDEIncidentID)},
		{"cs2Label", "mitreTechniques"}, {"cs2", strings.Join(f.Threat.Technique.ID, ",")},
		{"cs3Label", "status"}, {"cs3", inc.Status},
		{"cs4Label", "classification"}, {"cs4", inc.Classification},
		{"cs5Label", "assignedTo"}, {"cs5", inc.AssignedTo},
		{"cs6Label", "incident"}, {"cs6", strconv.FormatInt(inc.ID, 10)},
		{"cn1Label", "sequence"}, {"cn1", strconv.FormatInt(e.Seq, 10)},
		{"msg", strings.Join([]string{f.Mdebridge.Event.Kind, f.Mdebridge.Event.Origin, inc.Determination}, " ")},
	}
	sep := ""
	for _, kv := range ext {
		if kv.v == "" {
			continue
		}
		b.WriteString(sep)
		b.WriteString(kv.k)
		b.WriteByte('=')
		b.WriteString(cefValue(kv.v))
		sep = " "
	}
	return b.String()
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func formatNonZero(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// cefHeader escapes a CEF header field: backslash and pipe.
func cefHeader(s string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\n", " ", "\r", " ").Replace(s)
}

// cefValue escapes a CEF extension value: backslash, equals and newlines.
func cefValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r\n", `\n`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// sdValue escapes an RFC 5424 PARAM-VALUE: ", \ and ].
func sdValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}

// sdName makes s a valid header field: printable US-ASCII without spaces,
// at most n bytes, "-" when empty.
func sdName(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 && b.Len() < n {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

var _ mdebridge.EventSink = (*Syslog)(nil)
