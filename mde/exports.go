package mde

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
)

// The export assessment APIs: the whole tenant's vulnerability or software
// rows in a handful of calls. "Via files" is one call that returns links to
// gzip JSON Lines files in blob storage; they are streamed (download →
// gunzip → decode → hand over) and never held whole. A link that expires
// is renewed with another call; a transfer cut short resumes where it
// stopped (HTTP Range); a file that arrives empty, truncated or corrupt is
// fetched again and, if it stays broken, fails the export with its name.

// Export API names, as in DocumentedLimits and RequiredRoles.
const (
	apiVulnExportFiles = "GET /api/machines/SoftwareVulnerabilitiesExport"
	apiVulnExportJSON  = "GET /api/machines/SoftwareVulnerabilitiesByMachine"
	apiVulnChanges     = "GET /api/machines/SoftwareVulnerabilityChangesByMachine"
	apiSoftwareFiles   = "GET /api/machines/SoftwareInventoryExport"
	apiSoftwareJSON    = "GET /api/machines/SoftwareInventoryByMachine"
	// apiExportFile counts blob downloads, which are not MDE API calls.
	apiExportFile = "GET export file (blob storage)"
)

const (
	// MaxExportPageSize is the largest pageSize the JSON export APIs take.
	MaxExportPageSize = 200_000
	// exportBatch is how many rows are handed over at a time.
	exportBatch = 2000
	// fileAttempts bounds the downloads of one file that arrives empty,
	// truncated or corrupt; transfer cuts resume and do not count.
	fileAttempts = 3
	// sasValidHours asks for links valid long enough for a slow download.
	sasValidHours = 2
)

// ExportSettings tune the exports; the zero value is the default.
type ExportSettings struct {
	// Parallel is how many export files are downloaded at once (default 2).
	Parallel int
	// PageSize is the JSON export's page (default and maximum 200,000).
	PageSize int
}

// SetExportSettings changes how exports are fetched.
func (c *Client) SetExportSettings(s ExportSettings) { c.export = s }

func (c *Client) parallel() int { return max(1, cmp.Or(c.export.Parallel, 2)) }
func (c *Client) pageSize() int {
	return min(MaxExportPageSize, max(1, cmp.Or(c.export.PageSize, MaxExportPageSize)))
}

// ExportVulnerabilities hands every vulnerability row of the tenant to rows,
// via files or via JSON pages (o.Via).
func (c *Client) ExportVulnerabilities(ctx context.Context, o mdebridge.ExportOptions, rows func([]mdebridge.MachineVulnerability) error) (mdebridge.ExportInfo, error) {
	dec := func(d *rowDecoder, line []byte, r *mdebridge.MachineVulnerability) error {
		return d.vulnerability(line, r)
	}
	if o.Via == "json" {
		err := exportPages(ctx, c, apiVulnExportJSON, c.url("/api/machines/SoftwareVulnerabilitiesByMachine", url.Values{"pageSize": {strconv.Itoa(c.pageSize())}}), dec, rows)
		return mdebridge.ExportInfo{Via: "json"}, err
	}
	return exportViaFiles(ctx, c, apiVulnExportFiles, "/api/machines/SoftwareVulnerabilitiesExport", o, dec, rows)
}

// ExportSoftware hands every software inventory row of the tenant to rows.
func (c *Client) ExportSoftware(ctx context.Context, o mdebridge.ExportOptions, rows func([]mdebridge.SoftwareInstall) error) (mdebridge.ExportInfo, error) {
	dec := func(d *rowDecoder, line []byte, r *mdebridge.SoftwareInstall) error { return d.software(line, r) }
	if o.Via == "json" {
		err := exportPages(ctx, c, apiSoftwareJSON, c.url("/api/machines/SoftwareInventoryByMachine", url.Values{"pageSize": {strconv.Itoa(c.pageSize())}}), dec, rows)
		return mdebridge.ExportInfo{Via: "json"}, err
	}
	return exportViaFiles(ctx, c, apiSoftwareFiles, "/api/machines/SoftwareInventoryExport", o, dec, rows)
}

// VulnerabilityChanges hands the delta API's rows since the given time.
func (c *Client) VulnerabilityChanges(ctx context.Context, since time.Time, rows func([]mdebridge.MachineVulnerability) error) error {
	q := url.Values{"sinceTime": {since.UTC().Format(time.RFC3339)}, "pageSize": {strconv.Itoa(c.pageSize())}}
	return exportPages(ctx, c, apiVulnChanges, c.url("/api/machines/SoftwareVulnerabilityChangesByMachine", q),
		func(d *rowDecoder, line []byte, r *mdebridge.MachineVulnerability) error {
			return d.vulnerability(line, r)
		}, rows)
}

// exportPages follows a JSON export's pages (nextLink with an opaque
// $skiptoken), decoding each page's rows as the body streams in.
func exportPages[T any](ctx context.Context, c *Client, api, first string, decode func(*rowDecoder, []byte, *T) error, rows func([]T) error) error {
	d := newRowDecoder()
	next := first
	seen := map[string]bool{}
	for page := 1; next != ""; page++ {
		var nextLink string
		_, err := c.do(ctx, request{api: api, method: "GET", url: next, page: page}, func(body io.Reader) error {
			batch := make([]T, 0, exportBatch)
			item := 0
			var err error
			nextLink, err = decodePageItems(body, func(raw json.RawMessage) error {
				item++
				var r T
				if err := decode(d, raw, &r); err != nil {
					return fmt.Errorf("row %d: %w", item, err)
				}
				batch = append(batch, r)
				if len(batch) == exportBatch {
					if err := rows(batch); err != nil {
						return &handOverError{err}
					}
					batch = make([]T, 0, exportBatch)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(batch) > 0 {
				if err := rows(batch); err != nil {
					return &handOverError{err}
				}
			}
			return nil
		})
		if err != nil {
			var h *handOverError
			if errors.As(err, &h) {
				return h.err
			}
			return fmt.Errorf("export page %d: %w", page, err)
		}
		if nextLink == "" {
			return nil
		}
		link, err := c.sameHost(nextLink)
		if err != nil {
			return &MalformedPageError{API: api, Page: page, Err: err}
		}
		if seen[link] {
			return &MalformedPageError{API: api, Page: page, Err: fmt.Errorf("nextLink loop: %s was already fetched", nextLink)}
		}
		seen[link] = true
		next = link
	}
	return nil
}

// handOverError is a failure of the caller's callback, which must not be
// retried as if the page were bad.
type handOverError struct{ err error }

func (e *handOverError) Error() string { return e.err.Error() }

// exportFilesResponse is ExportFilesResponse.
type exportFilesResponse struct {
	ExportFiles   []string `json:"exportFiles"`
	GeneratedTime flexTime `json:"generatedTime"`
}

// requestExport makes the "via files" call. A refusal (an error answer
// other than throttling) wraps mdebridge.ErrExportUnavailable.
func (c *Client) requestExport(ctx context.Context, api, path string) (links []string, generated time.Time, err error) {
	var resp exportFilesResponse
	_, err = c.do(ctx, request{api: api, method: "GET", url: c.url(path, url.Values{"sasValidHours": {strconv.Itoa(sasValidHours)}})},
		func(body io.Reader) error { return json.NewDecoder(body).Decode(&resp) })
	if err != nil {
		var ae *APIError
		var pe *mdebridge.PermissionError
		if ctx.Err() == nil && (errors.As(err, &pe) || errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 429 && ae.Status != 408) {
			return nil, time.Time{}, fmt.Errorf("%w: %w", mdebridge.ErrExportUnavailable, err)
		}
		return nil, time.Time{}, err
	}
	for _, l := range resp.ExportFiles {
		u, err := url.Parse(l)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, time.Time{}, &MalformedPageError{API: api, Page: 1, Err: fmt.Errorf("export link %q is not an https URL", redactSAS(l))}
		}
	}
	return resp.ExportFiles, time.Time(resp.GeneratedTime), nil
}

// redactSAS drops a link's query: its signature is a credential.
func redactSAS(link string) string {
	base, _, _ := strings.Cut(link, "?")
	return base
}

// fileName is the last path segment of a link, for messages.
func fileName(link string) string {
	base := redactSAS(link)
	return base[strings.LastIndexByte(base, '/')+1:]
}

// exportLinks holds the current links of an export and renews them once
// for every downloader whose link expired.
type exportLinks struct {
	c         *Client
	api, path string
	mu        sync.Mutex
	gen       int               // bumped on every renewal
	byPath    map[string]string // link without query -> link
	generated time.Time
}

func (l *exportLinks) get(path string) (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byPath[path], l.gen
}

// renew asks for fresh links, unless another downloader already did since
// gen. A different snapshot means the export changed under us.
func (l *exportLinks) renew(ctx context.Context, gen int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		return nil
	}
	links, generated, err := l.c.requestExport(ctx, l.api, l.path)
	if err != nil {
		return fmt.Errorf("renew the expired export links: %w", err)
	}
	if !generated.Equal(l.generated) {
		return fmt.Errorf("%w (generated %s, now %s)", mdebridge.ErrExportChanged, l.generated.Format(time.RFC3339), generated.Format(time.RFC3339))
	}
	for _, link := range links {
		l.byPath[redactSAS(link)] = link
	}
	l.gen++
	l.c.log.Info("export links renewed", "api", l.api, "files", len(links))
	return nil
}

// exportViaFiles runs one export via files.
func exportViaFiles[T any](ctx context.Context, c *Client, api, path string, o mdebridge.ExportOptions, decode func(*rowDecoder, []byte, *T) error, rows func([]T) error) (mdebridge.ExportInfo, error) {
	info := mdebridge.ExportInfo{Via: "files"}
	links, generated, err := c.requestExport(ctx, api, path)
	if err != nil {
		return info, err
	}
	info.GeneratedTime = generated
	if !o.Unless.IsZero() && generated.Equal(o.Unless) {
		info.Skipped = true
		return info, nil
	}
	ls := &exportLinks{c: c, api: api, path: path, byPath: map[string]string{}, generated: generated}
	paths := make([]string, len(links))
	for i, link := range links {
		paths[i] = redactSAS(link)
		ls.byPath[paths[i]] = link
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []T, c.parallel())
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(c.parallel(), len(paths)) {
		wg.Go(func() {
			for p := range work {
				if err := downloadFile(ctx, c, ls, p, decode, batches); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	go func() {
		defer close(batches)
		defer wg.Wait()
		defer close(work)
		for _, p := range paths {
			select {
			case work <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	var handErr error
	for b := range batches {
		if handErr != nil || ctx.Err() != nil {
			continue // drain, so the downloaders can finish
		}
		if err := rows(b); err != nil {
			handErr = err
			cancel(err)
		}
	}
	if handErr != nil {
		return info, handErr
	}
	if err := context.Cause(ctx); err != nil {
		return info, err
	}
	info.Files = len(paths)
	return info, nil
}

// downloadFile streams one export file into batches, fetching it again
// when it arrives empty, truncated or corrupt.
func downloadFile[T any](ctx context.Context, c *Client, ls *exportLinks, path string, decode func(*rowDecoder, []byte, *T) error, out chan<- []T) error {
	name := fileName(path)
	var lastErr error
	for attempt := 1; attempt <= fileAttempts; attempt++ {
		rows, err := streamFile(ctx, c, ls, path, decode, out)
		if err == nil {
			c.log.Debug("export file done", "file", name, "rows", rows)
			return nil
		}
		var fatal *fatalFileError
		if ctx.Err() != nil || errors.As(err, &fatal) {
			return err
		}
		lastErr = err
		c.log.Warn("export file broken, fetching it again", "file", name, "attempt", attempt, "rows", rows, "err", err)
	}
	return fmt.Errorf("export file %s: %w (after %d downloads)", name, lastErr, fileAttempts)
}

// fatalFileError is a file failure that another download will not cure.
type fatalFileError struct{ err error }

func (e *fatalFileError) Error() string { return e.err.Error() }
func (e *fatalFileError) Unwrap() error { return e.err }

// streamFile downloads, gunzips and decodes one file. It returns how many
// rows it handed over.
func streamFile[T any](ctx context.Context, c *Client, ls *exportLinks, path string, decode func(*rowDecoder, []byte, *T) error, out chan<- []T) (int, error) {
	br := &blobReader{ctx: ctx, c: c, links: ls, path: path}
	defer br.close()
	zr, err := gzip.NewReader(br)
	if err != nil {
		if br.fatal != nil {
			return 0, br.fatal
		}
		if errors.Is(err, io.EOF) && br.off == 0 {
			return 0, errors.New("the download was empty")
		}
		return 0, fmt.Errorf("not a gzip file: %w", err)
	}
	defer zr.Close()
	rd := bufio.NewReaderSize(zr, 256<<10)
	d := newRowDecoder()
	batch := make([]T, 0, exportBatch)
	n, line := 0, 0
	var long []byte
	for {
		b, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = rd.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			// What was read of the last line is not a whole line.
			if br.fatal != nil {
				return n, br.fatal
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return n, fmt.Errorf("truncated: the gzip stream ends early after %d rows", line)
			}
			return n, fmt.Errorf("corrupt after %d rows: %w", line, err)
		}
		if len(b) > 0 && !isBlank(b) {
			line++
			var r T
			if derr := decode(d, b, &r); derr != nil {
				// Damage in transit shows as garbage before gzip's checksum
				// catches it: read on to tell a corrupt download (fetch it
				// again) from a malformed record (report it).
				if _, cerr := io.Copy(io.Discard, rd); cerr != nil {
					return n, fmt.Errorf("corrupt after %d rows: %w", line-1, cerr)
				}
				return n, &fatalFileError{fmt.Errorf("export file %s line %d: %w", fileName(path), line, derr)}
			}
			batch = append(batch, r)
			if len(batch) == exportBatch {
				if serr := send(ctx, out, batch); serr != nil {
					return n, serr
				}
				n += len(batch)
				batch = make([]T, 0, exportBatch)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(batch) > 0 {
		if err := send(ctx, out, batch); err != nil {
			return n, err
		}
		n += len(batch)
	}
	return n, nil
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

func send[T any](ctx context.Context, out chan<- []T, b []T) error {
	select {
	case out <- b:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// blobReader reads one blob, resuming with a Range request where a
// transfer broke off and renewing the link when it expires. Failures it
// cannot cure are in fatal.
type blobReader struct {
	ctx   context.Context
	c     *Client
	links *exportLinks
	path  string

	body     io.ReadCloser
	off      int64
	size     int64 // -1: unknown
	opened   bool
	resumes  int
	renewals int
	fatal    error
	lastErr  error
	finished bool
}

// maxResumes bounds the reconnections of one download, maxRenewals the
// times its link is renewed.
const (
	maxResumes  = 6
	maxRenewals = 2
)

func (b *blobReader) close() {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.finished {
			return 0, io.EOF
		}
		if b.fatal != nil {
			return 0, b.fatal
		}
		if b.body == nil {
			if err := b.open(); err != nil {
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil {
			return n, nil
		}
		b.close()
		if errors.Is(err, io.EOF) && (b.size < 0 || b.off >= b.size) {
			b.finished = true
			return n, io.EOF
		}
		// The transfer broke off (or ended short of its Content-Length).
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.lastErr = err
		if b.ctx.Err() != nil {
			return n, context.Cause(b.ctx)
		}
		b.c.log.Info("export download cut, resuming", "file", fileName(b.path), "offset", b.off, "err", err)
		if n > 0 {
			return n, nil
		}
	}
}

// open (re)starts the download at b.off.
func (b *blobReader) open() error {
	for {
		if b.resumes > maxResumes {
			b.fatal = fmt.Errorf("the download broke off %d times (last: %v)", b.resumes, b.lastErr)
			return b.fatal
		}
		if b.opened {
			b.resumes++
			if err := sleepCtx(b.ctx, b.c.backoff(b.resumes)); err != nil {
				return err
			}
		}
		b.opened = true
		link, gen := b.links.get(b.path)
		req, err := http.NewRequestWithContext(b.ctx, "GET", link, nil)
		if err != nil {
			b.fatal = &fatalFileError{err}
			return b.fatal
		}
		req.Header.Set("User-Agent", b.c.opts.UserAgent)
		req.Header.Set("x-ms-version", "2019-12-12")
		if b.off > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(b.off, 10)+"-")
		}
		mdebridge.CountAPICall(b.ctx, apiExportFile)
		resp, err := b.c.opts.HTTPClient.Do(req)
		if err != nil {
			if b.ctx.Err() != nil {
				return context.Cause(b.ctx)
			}
			b.lastErr = fmt.Errorf("%w: %w", ErrTransient, redactURLError(err))
			continue
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			b.size = resp.ContentLength
			if b.off > 0 {
				// The server ignored the range: skip what we have.
				if _, err := io.CopyN(io.Discard, resp.Body, b.off); err != nil {
					resp.Body.Close()
					b.lastErr = err
					continue
				}
			}
			b.body = resp.Body
			return nil
		case resp.StatusCode == http.StatusPartialContent:
			start, size, ok := contentRange(resp.Header.Get("Content-Range"))
			if !ok || start != b.off {
				resp.Body.Close()
				b.fatal = &fatalFileError{fmt.Errorf("blob storage answered the range from %d with %q", b.off, resp.Header.Get("Content-Range"))}
				return b.fatal
			}
			b.size, b.body = size, resp.Body
			return nil
		case resp.StatusCode == http.StatusForbidden:
			// The SAS link expired (or was refused): renew the links once.
			detail := blobErrorText(resp)
			b.c.log.Info("export link refused, renewing", "file", fileName(b.path), "detail", detail)
			if b.renewals++; b.renewals > maxRenewals {
				b.fatal = &fatalFileError{fmt.Errorf("blob storage refused the link %d times, renewed each time: %s", b.renewals, detail)}
				return b.fatal
			}
			if err := b.links.renew(b.ctx, gen); err != nil {
				b.fatal = &fatalFileError{err}
				return b.fatal
			}
			b.lastErr = fmt.Errorf("link refused: %s", detail)
		case resp.StatusCode == http.StatusNotFound:
			detail := blobErrorText(resp)
			b.fatal = &fatalFileError{fmt.Errorf("%w: the file is gone from blob storage (%s)", mdebridge.ErrExportChanged, detail)}
			return b.fatal
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			resp.Body.Close()
			b.finished = true
			b.body = io.NopCloser(strings.NewReader(""))
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
			b.lastErr = fmt.Errorf("blob storage answered %d: %s", resp.StatusCode, blobErrorText(resp))
			if ra, ok := retryAfter(resp.Header); ok {
				if err := sleepCtx(b.ctx, ra); err != nil {
					return err
				}
			}
		default:
			b.fatal = &fatalFileError{fmt.Errorf("blob storage answered %d: %s", resp.StatusCode, blobErrorText(resp))}
			return b.fatal
		}
	}
}

// blobErrorText reads (and closes) an error answer of blob storage: its
// code and message, or the status.
func blobErrorText(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	code := resp.Header.Get("x-ms-error-code")
	msg := xmlElement(string(body), "AuthenticationErrorDetail")
	if msg == "" {
		msg, _, _ = strings.Cut(xmlElement(string(body), "Message"), "\n")
	}
	switch {
	case code != "" && msg != "":
		return code + ": " + msg
	case code != "":
		return code
	}
	return resp.Status
}

func xmlElement(doc, name string) string {
	_, rest, ok := strings.Cut(doc, "<"+name+">")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, "</"+name+">")
	return v
}

// contentRange parses "bytes start-end/size".
func contentRange(h string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	size, err2 := strconv.ParseInt(total, 10, 64)
	if total == "*" {
		size, err2 = -1, nil
	}
	ok = err1 == nil && err2 == nil && start >= 0 && (size == -1 || size > start)
	return start, size, ok
}

// redactURLError drops the SAS query from a transport error's URL.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactSAS(ue.URL), ue.Err)
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
