package response

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/internal/atomicfile"
	"github.com/mdebridge/mdebridge/mde"
)

// download saves what a finished action produced: the investigation package
// of a collection, the result of each live response command that has one.
// Each file is written whole or not at all, with its SHA-256 beside it
// (FILE.sha256, in sha256sum's format) and in the audit log.
func (s *Service) download(ctx context.Context, req mdebridge.ActionRequest, requestID string, t Target, a mdebridge.MachineAction) ([]mdebridge.Download, error) {
	if err := os.MkdirAll(req.DownloadDir, 0o750); err != nil {
		return nil, fmt.Errorf("download directory: %w", err)
	}
	host := safeName(strings.SplitN(t.Name, ".", 2)[0])
	if host == "" {
		host = t.ID
	}
	type item struct {
		what, file string
		link       func() (string, error)
	}
	var items []item
	switch a.Type {
	case mdebridge.ActionCollect:
		items = append(items, item{"investigation package", host + "-" + a.ID + "-investigation-package.zip",
			func() (string, error) { return s.opts.Client.GetPackageURI(ctx, a.ID) }})
	case mdebridge.ActionLiveResponse:
		for i, c := range a.Commands {
			if c.Command.Type == "PutFile" {
				continue // PutFile has no result
			}
			name := fmt.Sprintf("%s-%s-%d-%s", host, a.ID, i, strings.ToLower(c.Command.Type))
			switch c.Command.Type {
			case "RunScript":
				name += ".json"
			case "GetFile":
				for _, p := range c.Command.Params {
					if p.Key == "Path" {
						name += "-" + safeName(path.Base(strings.ReplaceAll(p.Value, `\`, "/")))
					}
				}
			}
			items = append(items, item{fmt.Sprintf("live response command %d (%s)", i, c.Command.Type), name,
				func() (string, error) { return s.opts.Client.GetLiveResponseResultLink(ctx, a.ID, i) }})
		}
	}
	var out []mdebridge.Download
	for _, it := range items {
		d, err := s.fetch(ctx, filepath.Join(req.DownloadDir, it.file), it.link)
		if err != nil {
			return out, fmt.Errorf("%s of action %s: %w", it.what, a.ID, err)
		}
		d.What = it.what
		out = append(out, d)
		e := s.audit(req, requestID, t, mdebridge.AuditDone)
		e.Operation, e.ActionID, e.Status = req.Operation+".download", a.ID, a.Status
		e.Details, _ = json.Marshal(map[string]any{"file": d.Path, "sha256": d.SHA256, "bytes": d.Bytes, "what": d.What})
		if err := s.record(ctx, e); err != nil {
			return out, err
		}
	}
	return out, nil
}

// fetch downloads the file behind a fresh link into dst. A link that has
// expired by the time it is used is asked for again, once.
func (s *Service) fetch(ctx context.Context, dst string, link func() (string, error)) (mdebridge.Download, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return mdebridge.Download{}, err
	}
	defer os.Remove(tmp.Name()) // gone after the rename
	defer tmp.Close()
	var h hash.Hash
	open := func() (io.Writer, error) {
		if err := tmp.Truncate(0); err != nil {
			return nil, err
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		h = sha256.New()
		return io.MultiWriter(tmp, h), nil
	}
	var n int64
	for attempt := 0; ; attempt++ {
		var u string
		if u, err = link(); err != nil {
			return mdebridge.Download{}, err
		}
		n, err = s.opts.Client.Download(ctx, u, open)
		var de *mde.DownloadError
		if errors.As(err, &de) && de.Expired() && attempt == 0 {
			continue
		}
		break
	}
	if err != nil {
		return mdebridge.Download{}, err
	}
	if err := tmp.Sync(); err != nil {
		return mdebridge.Download{}, err
	}
	if err := tmp.Close(); err != nil {
		return mdebridge.Download{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return mdebridge.Download{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := atomicfile.Write(dst+".sha256", []byte(sum+"  "+filepath.Base(dst)+"\n"), 0o644); err != nil {
		return mdebridge.Download{}, err
	}
	return mdebridge.Download{Path: dst, SHA256: sum, Bytes: n}, nil
}

// safeName keeps a file name to letters, digits, dots, dashes and
// underscores: names come from machines and commands, not from us.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	return strings.TrimLeft(s, ".")
}
