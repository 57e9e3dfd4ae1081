package emulator

import (
	"crypto/md5"
	byteorder "encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// fileProfile is what the service knows of a file (mde-api.md §4.7;
// docs/alert-files.json), in the live key order. The emulator derives it
// from the file's hashes, name and path, so the same file gets the same
// profile wherever it appears (GET /api/alerts/{id}/files; later
// /api/files/{id}).
type fileProfile struct {
	SHA1, SHA256, MD5   string
	GlobalPrevalence    opt[int64]
	GlobalFirstObserved time.Time
	GlobalLastObserved  time.Time
	Size                opt[int64]
	FileType            opt[string]
	IsPEFile            bool
	FilePublisher       opt[string]
	FileProductName     opt[string]
	Signer              opt[string]
	Issuer              opt[string]
	SignerHash          opt[string]
	IsValidCertificate  opt[bool]
	DeterminationType   string
	DeterminationValue  opt[string]
}

// evidenceFileOf profiles the file of a file or process evidence entry of a. A file
// the alert detected is malware named after the alert's threat; a file in
// a system directory is Microsoft's, signed and common.
func evidenceFileOf(e evidence, a *alert) fileProfile {
	seed := byteorder.LittleEndian.Uint64(digest(md5.New(), strings.ToLower(e.SHA1.V)))
	f := fileProfile{SHA1: e.SHA1.V, SHA256: e.SHA256.V, MD5: hex.EncodeToString(digest(md5.New(), strings.ToLower(e.FileName.V))),
		DeterminationType: "Unknown"}
	name, path := strings.ToLower(e.FileName.V), strings.ToLower(e.FilePath.V)
	f.IsPEFile = strings.HasSuffix(name, ".exe") || strings.HasSuffix(name, ".dll")
	f.Size = some(int64(20_000 + seed%4_000_000))
	first := a.AlertCreationTime.Add(-time.Duration(seed%(3*365*24)) * time.Hour).Truncate(100 * time.Nanosecond)
	f.GlobalFirstObserved, f.GlobalLastObserved = first, a.AlertCreationTime.Truncate(100*time.Nanosecond)
	system := strings.HasPrefix(path, `c:\windows`) || strings.HasPrefix(path, `c:\program files`) ||
		strings.HasPrefix(path, "/usr/") || strings.HasPrefix(path, "/bin") || strings.HasPrefix(path, "/applications/")
	detected := e.DetectionStatus.OK
	switch {
	case detected:
		f.GlobalPrevalence = some(int64(1 + seed%400))
		f.DeterminationType = "Malware"
		if a.ThreatName.OK {
			f.DeterminationValue = a.ThreatName
		}
	case system:
		f.GlobalPrevalence = some(int64(1_000_000 + seed%900_000_000))
		f.FilePublisher, f.FileProductName = some("Microsoft Corporation"), some("Microsoft® Windows® Operating System")
		f.Signer, f.Issuer = some("Microsoft Windows"), some("Microsoft Windows Production PCA 2011")
		f.SignerHash, f.IsValidCertificate = some(hex.EncodeToString(digest(md5.New(), "signer:microsoft"))[:32]+"00000000"), some(true)
	default:
		f.GlobalPrevalence = some(int64(seed % 5000))
	}
	return f
}

// appendFileProfile appends f as a File entity; prefix, when given, is a
// single entity's @odata.context member.
func appendFileProfile(b []byte, f fileProfile, prefix []byte) []byte {
	b = append(b, '{')
	if len(prefix) > 0 {
		b = append(b, prefix...)
		b = append(b, ',')
	}
	b = append(b, `"sha1":`...)
	b = appendString(b, f.SHA1)
	b = append(b, `,"sha256":`...)
	b = appendOptString(b, opt[string]{V: f.SHA256, OK: f.SHA256 != ""})
	b = append(b, `,"md5":`...)
	b = appendString(b, f.MD5)
	b = append(b, `,"globalPrevalence":`...)
	b = appendOptInt(b, f.GlobalPrevalence)
	b = append(b, `,"globalFirstObserved":`...)
	b = appendTime(b, f.GlobalFirstObserved)
	b = append(b, `,"globalLastObserved":`...)
	b = appendTime(b, f.GlobalLastObserved)
	b = append(b, `,"size":`...)
	b = appendOptInt(b, f.Size)
	b = append(b, `,"fileType":`...)
	b = appendOptString(b, f.FileType)
	b = append(b, `,"isPeFile":`...)
	b = appendOptBool(b, some(f.IsPEFile))
	for _, kv := range []struct {
		k string
		v opt[string]
	}{{"filePublisher", f.FilePublisher}, {"fileProductName", f.FileProductName}, {"signer", f.Signer}, {"issuer", f.Issuer}, {"signerHash", f.SignerHash}} {
		b = append(b, `,"`...)
		b = append(b, kv.k...)
		b = append(b, `":`...)
		b = appendOptString(b, kv.v)
	}
	b = append(b, `,"isValidCertificate":`...)
	b = appendOptBool(b, f.IsValidCertificate)
	b = append(b, `,"determinationType":`...)
	b = appendString(b, f.DeterminationType)
	b = append(b, `,"determinationValue":`...)
	b = appendOptString(b, f.DeterminationValue)
	return append(b, '}')
}
