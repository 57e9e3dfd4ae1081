package app

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// formats are the -o values; not every command offers all of them.
var formats = []string{"table", "json", "jsonl", "csv"}

func checkFormat(cmd, f string, allowed ...string) error {
	if len(allowed) == 0 {
		allowed = formats
	}
	for _, a := range allowed {
		if f == a {
			return nil
		}
	}
	return fmt.Errorf("-o %q is not one of %s", f, strings.Join(allowed, ", "))
}

// column is one column of a table or CSV listing.
type column[T any] struct {
	head string
	get  func(T) string
}

// writeTable prints rows as an aligned table.
func writeTable[T any](w io.Writer, cols []column[T], rows []T) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = sanitizeCell(c.get(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// sanitizeCell keeps a table aligned whatever the data holds.
func sanitizeCell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// writeCSV prints rows as RFC 4180 CSV with a header.
func writeCSV[T any](w io.Writer, cols []column[T], rows []T) error {
	cw := csv.NewWriter(w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = strings.ToLower(strings.ReplaceAll(c.head, " ", "_"))
	}
	if err := cw.Write(heads); err != nil {
		return err
	}
	for _, r := range rows {
		rec := make([]string, len(cols))
		for i, c := range cols {
			rec[i] = csvSafe(c.get(r))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses values a spreadsheet would run as a formula: device names
// and tags come from endpoints, which an attacker may control.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeJSON prints v indented.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeRawArray prints raw JSON objects as one indented array, streaming.
func writeRawArray(w io.Writer, items []json.RawMessage) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, it := range items {
		sep := ",\n  "
		if i == 0 {
			sep = "\n  "
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		if err := indentRaw(w, it, "  "); err != nil {
			return err
		}
	}
	if len(items) > 0 {
		_, err := io.WriteString(w, "\n]\n")
		return err
	}
	_, err := io.WriteString(w, "]\n")
	return err
}

// writeRawLines prints raw JSON objects one per line (JSON Lines).
func writeRawLines(w io.Writer, items []json.RawMessage) error {
	for _, it := range items {
		if err := compactRaw(w, it); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}

// writeRaw prints one raw JSON object, indented, on lines of its own: what
// -o json prints of one MDE object.
func writeRaw(w io.Writer, raw json.RawMessage) error {
	if err := indentRaw(w, raw, ""); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func indentRaw(w io.Writer, raw json.RawMessage, prefix string) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, prefix, "  "); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func compactRaw(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
