package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Webhook headers. The signature is HMAC-SHA256 over the timestamp, a dot
// and the body, as "sha256=<hex>": a receiver recomputes it with the shared
// key and rejects old timestamps (docs/incident-events.md).
const (
	HeaderEventID   = "X-Mdebridge-Event-Id"
	HeaderSequence  = "X-Mdebridge-Event-Sequence"
	HeaderTimestamp = "X-Mdebridge-Timestamp"
	HeaderSignature = "X-Mdebridge-Signature"
)

// Sign returns the signature header value of body sent at timestamp (unix
// seconds) with key.
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookOptions configure a webhook sink.
type WebhookOptions struct {
	Name string // default "webhook"
	URL  string // required
	// HMACKey signs every request (HeaderSignature) when set.
	HMACKey []byte
	// Headers are sent with every request (an Authorization token…).
	Headers map[string]string
	// Timeout bounds one attempt (default 10s): a hanging receiver is a
	// failed attempt.
	Timeout time.Duration
	// MaxAttempts per event (default 5); after the last, or at once for an
	// answer that retrying cannot change (4xx but 408 and 429), the event
	// goes to the dead-letter file.
	MaxAttempts int
	// MinBackoff doubles per attempt up to MaxBackoff (defaults 1s, 1m);
	// Retry-After, when sent, is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// DeadLetterPath is the JSON Lines file of events that could not be
	// delivered. Required.
	DeadLetterPath string
	// Concurrency is how many incidents are delivered at once (default 4);
	// the events of one incident are delivered in order.
	Concurrency int
	HTTPClient  *http.Client
	Logger      *slog.Logger
	Now         func() time.Time
}

// Webhook POSTs each event as JSON. It is at least once: an event whose
// answer was lost is sent again, with the same HeaderEventID.
type Webhook struct {
	opts WebhookOptions
	dead *deadLetters
}

// NewWebhook validates the options and returns the sink.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Name == "" {
		o.Name = "webhook"
	}
	if o.URL == "" || o.DeadLetterPath == "" {
		return nil, fmt.Errorf("sink %s: URL and DeadLetterPath are required", o.Name)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Webhook{opts: o, dead: &deadLetters{path: o.DeadLetterPath, sink: o.Name, now: o.Now}}, nil
}

func (w *Webhook) Name() string { return w.opts.Name }
func (w *Webhook) Close() error { return nil }

// Deliver sends the events, Concurrency incidents at a time and each
// incident's events in order. It returns once every event is delivered or
// dead-lettered, or ctx ends; then what comes after the first event not
// yet handled is offered again later.
func (w *Webhook) Deliver(ctx context.Context, evs []mdebridge.StoredEvent) (mdebridge.Delivery, error) {
	lanes := make([][]int, w.opts.Concurrency)
	for i, e := range evs {
		l := int(uint64(e.IncidentID) % uint64(len(lanes)))
		lanes[l] = append(lanes[l], i)
	}
	done := make([]bool, len(evs))
	dead := make([]bool, len(evs))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for _, lane := range lanes {
		wg.Go(func() {
			for _, i := range lane {
				attempts, err := w.send(ctx, evs[i])
				if err != nil && ctx.Err() == nil {
					err = w.dead.add(evs[i], attempts, err)
					if err == nil {
						mu.Lock()
						dead[i] = true
						mu.Unlock()
						w.opts.Logger.Error("webhook gave up on an event; it is in the dead-letter file", "sink", w.opts.Name,
							"event", evs[i].ID, "sequence", evs[i].Seq, "file", w.opts.DeadLetterPath)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return // the rest of this incident waits: order is kept
				}
				mu.Lock()
				done[i] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Handled is the prefix all done; what is done after a gap is offered
	// again (and sent again: at least once).
	d := mdebridge.Delivery{}
	for d.Handled < len(done) && done[d.Handled] {
		if dead[d.Handled] {
			d.DeadLettered++
		}
		d.Handled++
	}
	if d.Handled < len(evs) && firstErr == nil {
		firstErr = ctx.Err()
	}
	return d, firstErr
}

// errPermanent marks an answer that retrying cannot change.
var errPermanent = errors.New("the receiver refused the event")

// send delivers one event, retrying with backoff; it fails once the
// attempts are spent or the answer is permanent, and says how many it made.
func (w *Webhook) send(ctx context.Context, e mdebridge.StoredEvent) (int, error) {
	var last error
	attempt := 1
	for ; attempt <= w.opts.MaxAttempts; attempt++ {
		retryAfter, err := w.post(ctx, e)
		if err == nil {
			return attempt, nil
		}
		last = fmt.Errorf("attempt %d: %w", attempt, err)
		if errors.Is(err, errPermanent) || ctx.Err() != nil || attempt == w.opts.MaxAttempts {
			break
		}
		d := min(w.opts.MinBackoff<<(attempt-1), w.opts.MaxBackoff)
		d = d/2 + rand.N(d/2+1)
		if retryAfter > 0 {
			d = min(retryAfter, w.opts.MaxBackoff)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, ctx.Err()
		case <-t.C:
		}
	}
	return min(attempt, w.opts.MaxAttempts), last
}

// post makes one attempt; a 429 or 503 may say when to come back.
func (w *Webhook) post(ctx context.Context, e mdebridge.StoredEvent) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(e.Body))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errPermanent, err)
	}
	ts := strconv.FormatInt(w.opts.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mdebridge")
	req.Header.Set(HeaderEventID, e.ID)
	req.Header.Set(HeaderSequence, strconv.FormatInt(e.Seq, 10))
	req.Header.Set(HeaderTimestamp, ts)
	if len(w.opts.HMACKey) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.opts.HMACKey, ts, e.Body))
	}
	for k, v := range w.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.opts.HTTPClient.Do(req)
	if err != nil {
		// The client's error quotes the URL, whose path or query may hold
		// a token (chat and SOAR webhooks do): name only its host.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			ue.URL = RedactURL(ue.URL)
		}
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return 0, nil
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
		var ra time.Duration
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			ra = time.Duration(secs) * time.Second
		}
		return ra, fmt.Errorf("%s", resp.Status)
	default:
		return 0, fmt.Errorf("%w: %s", errPermanent, resp.Status)
	}
}

// RedactURL is a webhook URL without what may be secret in it: scheme and
// host only.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<webhook URL>"
	}
	if p.Path == "" && p.RawQuery == "" {
		return p.Scheme + "://" + p.Host
	}
	return p.Scheme + "://" + p.Host + "/…"
}

// deadLetters appends events that could not be delivered to a JSON Lines
// file, with why: nothing a sink gives up on is lost.
type deadLetters struct {
	mu   sync.Mutex
	path string
	sink string
	now  func() time.Time
}

func (d *deadLetters) add(e mdebridge.StoredEvent, attempts int, cause error) error {
	line, err := json.Marshal(struct {
		DeadLetteredAt time.Time       `json:"deadLetteredAt"`
		Sink           string          `json:"sink"`
		Attempts       int             `json:"attempts"`
		Error          string          `json:"error"`
		Event          json.RawMessage `json:"event"`
	}{d.now().UTC(), d.sink, attempts, cause.Error(), e.Body})
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	return errors.Join(werr, f.Close())
}

var _ mdebridge.EventSink = (*Webhook)(nil)
