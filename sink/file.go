// Package sink delivers incident events: to a JSON Lines file with
// rotation, a writer (stdout), a webhook (signed, retried, with a
// dead-letter file) and syslog (RFC 5424 over UDP, TCP or TLS, the event
// as JSON or CEF). Each is a mdebridge.EventSink; the incident pipeline
// runs one dispatcher per sink, so a sink only has to deliver in order and
// say how far it got. A sink must never lose an event it reports as
// handled.
package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
)

// FileOptions configure a JSON Lines file sink.
type FileOptions struct {
	Name string // default "file"
	Path string // required
	// MaxBytes rotates the file before it would grow past this (default
	// 100 MiB); MaxFiles rotated files are kept (default 10).
	MaxBytes int64
	MaxFiles int
	Now      func() time.Time
}

// File writes each event as one line of JSON to a file. It is exactly
// once across crashes: at start it reads the last complete line to learn
// the last event it holds (Delivered) and cuts a line a crash left half
// written. A full file is renamed with the time of its rotation
// (incidents-20261120T101500.000Z.jsonl) and a new one started.
type File struct {
	opts FileOptions
	mu   sync.Mutex
	f    *os.File
	size int64
}

// NewFile opens (or creates) the file, repairing a half-written last line.
func NewFile(o FileOptions) (*File, error) {
	if o.Path == "" {
		return nil, errors.New("sink: file: Path is required")
	}
	if o.Name == "" {
		o.Name = "file"
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 100 << 20
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("sink %s: %w", o.Name, err)
	}
	s := &File{opts: o}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *File) open() error {
	f, err := os.OpenFile(s.opts.Path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("sink %s: %w", s.opts.Name, err)
	}
	end, err := completeEnd(f)
	if err == nil {
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("sink %s: repair %s: %w", s.opts.Name, s.opts.Path, err)
	}
	s.f, s.size = f, end
	return nil
}

// completeEnd is the offset after the file's last newline: what follows
// it is a line a crash cut short.
func completeEnd(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// lastLine returns the last complete line of the file at path (nil when
// there is none).
func lastLine(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	end, err := completeEnd(f)
	if err != nil || end == 0 {
		return nil, err
	}
	// The last line is [start, end-1): find the newline before it.
	start := end - 1
	buf := make([]byte, 64<<10)
	for start > 0 {
		n := min(int64(len(buf)), start)
		if _, err := f.ReadAt(buf[:n], start-n); err != nil {
			return nil, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			start = start - n + int64(i) + 1
			break
		}
		start -= n
	}
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return nil, err
	}
	return line, nil
}

// Name is the sink's name.
func (s *File) Name() string { return s.opts.Name }

// Delivered returns the sequence number of the last event the files hold.
func (s *File) Delivered() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := append([]string{s.opts.Path}, s.rotated()...)
	for _, p := range paths {
		line, err := lastLine(p)
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			continue // a file rotated just before the crash: look at the one before
		}
		var ev struct {
			Event struct {
				Sequence int64 `json:"sequence"`
			} `json:"event"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return 0, fmt.Errorf("the last line of %s is not an event: %w", p, err)
		}
		return ev.Event.Sequence, nil
	}
	return 0, nil
}

// rotated lists the rotated files, newest first.
func (s *File) rotated() []string {
	dir, base := filepath.Split(s.opts.Path)
	ext := filepath.Ext(base)
	matches, _ := filepath.Glob(filepath.Join(dir, strings.TrimSuffix(base, ext)+"-*"+ext))
	slices.Sort(matches)
	slices.Reverse(matches)
	return matches
}

// Deliver appends the events, rotating the file when it is full. Each
// file's part of a batch is one write.
func (s *File) Deliver(_ context.Context, evs []mdebridge.StoredEvent) (mdebridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return mdebridge.Delivery{}, fmt.Errorf("sink %s: closed", s.opts.Name)
	}
	var buf bytes.Buffer
	handled, pending := 0, 0
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		n, err := s.f.Write(buf.Bytes())
		s.size += int64(n)
		if err != nil {
			return fmt.Errorf("sink %s: write: %w", s.opts.Name, err)
		}
		handled += pending
		pending = 0
		buf.Reset()
		return nil
	}
	for _, e := range evs {
		line := int64(len(e.Body)) + 1
		if s.size+int64(buf.Len())+line > s.opts.MaxBytes && s.size+int64(buf.Len()) > 0 {
			if err := flush(); err != nil {
				return mdebridge.Delivery{Handled: handled}, err
			}
			if err := s.rotate(); err != nil {
				return mdebridge.Delivery{Handled: handled}, err
			}
		}
		buf.Write(e.Body)
		buf.WriteByte('\n')
		pending++
	}
	if err := flush(); err != nil {
		return mdebridge.Delivery{Handled: handled}, err
	}
	return mdebridge.Delivery{Handled: handled}, nil
}

// rotate renames the full file with the time and starts a new one, then
// drops the oldest rotated files beyond MaxFiles.
func (s *File) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("sink %s: rotate: %w", s.opts.Name, err)
	}
	s.f = nil
	dir, base := filepath.Split(s.opts.Path)
	ext := filepath.Ext(base)
	stamp := s.opts.Now().UTC().Format("20060102T150405.000Z")
	target := filepath.Join(dir, strings.TrimSuffix(base, ext)+"-"+stamp+ext)
	for i := 1; fileExists(target); i++ {
		target = filepath.Join(dir, fmt.Sprintf("%s-%s.%d%s", strings.TrimSuffix(base, ext), stamp, i, ext))
	}
	if err := os.Rename(s.opts.Path, target); err != nil {
		return fmt.Errorf("sink %s: rotate: %w", s.opts.Name, err)
	}
	if err := s.open(); err != nil {
		return err
	}
	for _, old := range s.rotated()[min(s.opts.MaxFiles, len(s.rotated())):] {
		os.Remove(old)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Close closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Writer writes each event as a line of JSON to w (stdout). It cannot
// tell what it wrote before a crash, so it is at least once.
type Writer struct {
	name string
	mu   sync.Mutex
	w    io.Writer
}

// NewWriter returns a sink writing to w.
func NewWriter(name string, w io.Writer) *Writer {
	if name == "" {
		name = "stdout"
	}
	return &Writer{name: name, w: w}
}

func (s *Writer) Name() string { return s.name }
func (s *Writer) Close() error { return nil }

// Deliver writes the events, one write per event.
func (s *Writer) Deliver(_ context.Context, evs []mdebridge.StoredEvent) (mdebridge.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range evs {
		if _, err := s.w.Write(append(slices.Clip(e.Body), '\n')); err != nil {
			return mdebridge.Delivery{Handled: i}, fmt.Errorf("sink %s: %w", s.name, err)
		}
	}
	return mdebridge.Delivery{Handled: len(evs)}, nil
}

var (
	_ mdebridge.EventSink        = (*File)(nil)
	_ mdebridge.EventSinkResumer = (*File)(nil)
	_ mdebridge.EventSink        = (*Writer)(nil)
)
