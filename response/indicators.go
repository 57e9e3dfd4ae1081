package response

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/indicators"
	"github.com/mdebridge/mdebridge/mde"
)

// ImportIndicatorFile reads an indicator file (csv, json or stix) and
// imports what it holds, as ImportIndicators does.
func (s *Service) ImportIndicatorFile(ctx context.Context, r io.Reader, format string, imp mdebridge.IndicatorImport) (*mdebridge.IndicatorImportReport, error) {
	res, err := indicators.Parse(r, format, indicators.Options{Defaults: s.defaults(imp.Defaults), Now: s.now()})
	if err != nil {
		return nil, usage("%v", err)
	}
	imp.Indicators, imp.Problems, imp.Entries, imp.Duplicates = res.Indicators, res.Problems, res.Entries, res.Duplicates
	if imp.Operation == "" {
		imp.Operation = "indicators.import"
	}
	return s.ImportIndicators(ctx, imp)
}

func (s *Service) defaults(d mdebridge.IndicatorDefaults) mdebridge.IndicatorDefaults {
	if d.Action == "" {
		d.Action = s.opts.Indicators.Action
	}
	if d.Severity == "" {
		d.Severity = s.opts.Indicators.Severity
	}
	if d.Expiration == 0 {
		d.Expiration = s.opts.Indicators.Expiration
	}
	return d
}

// ImportIndicators submits indicators to MDE: one through POST (an upsert
// by type and value), more through the import API in batches of 500 (so
// 10,000 take 20 calls, paced at 30 a minute). Indicators given directly
// are completed and checked here; with Atomic, any problem sends nothing.
// With DryRun it only says what would change against the store.
func (s *Service) ImportIndicators(ctx context.Context, imp mdebridge.IndicatorImport) (*mdebridge.IndicatorImportReport, error) {
	imp.Comment = strings.TrimSpace(imp.Comment)
	if imp.Comment == "" {
		return nil, usage("a comment is required: say why these indicators are added (--comment); it goes to the audit log")
	}
	if imp.Actor == "" {
		imp.Actor = "unknown"
	}
	if imp.Operation == "" {
		imp.Operation = "indicators.import"
	}
	rep := &mdebridge.IndicatorImportReport{RequestID: s.opts.NewID(), DryRun: imp.DryRun, Atomic: imp.Atomic,
		Entries: imp.Entries, Duplicates: imp.Duplicates, Problems: append([]mdebridge.IndicatorProblem{}, imp.Problems...)}
	opts := indicators.Options{Defaults: s.defaults(imp.Defaults), Now: s.now()}
	var valid []mdebridge.Indicator
	seen := map[string]bool{}
	for i, in := range imp.Indicators {
		if err := indicators.Complete(&in, opts, in.GenerateAlert); err != nil {
			rep.Problems = append(rep.Problems, mdebridge.IndicatorProblem{Line: i + 1, Value: in.IndicatorValue, Message: err.Error()})
			continue
		}
		if k := indicators.Key(in.IndicatorType, in.IndicatorValue); seen[k] {
			rep.Duplicates++
			continue
		} else {
			seen[k] = true
		}
		valid = append(valid, in)
	}
	if rep.Entries == 0 {
		rep.Entries = len(imp.Indicators)
	}
	rep.Valid = len(valid)
	if err := s.diff(ctx, valid, rep); err != nil {
		return nil, err
	}
	summary := &mdebridge.AuditEntry{At: s.now(), Actor: imp.Actor, Operation: imp.Operation, Comment: imp.Comment,
		RequestID: rep.RequestID, Result: mdebridge.AuditRequested}
	summary.Details, _ = json.Marshal(map[string]int{"entries": rep.Entries, "valid": rep.Valid, "problems": len(rep.Problems),
		"duplicates": rep.Duplicates, "new": rep.New, "changed": rep.Changed, "unchanged": rep.Unchanged})
	switch {
	case imp.Atomic && len(rep.Problems) > 0:
		rep.Aborted = fmt.Sprintf("%d entries have problems and the import is atomic: nothing was sent", len(rep.Problems))
		summary.Result, summary.Error = mdebridge.AuditFailed, rep.Aborted
	case imp.DryRun:
		summary.Result = mdebridge.AuditDryRun
	case len(valid) == 0:
		rep.Aborted = "no valid indicator to send"
		summary.Result, summary.Error = mdebridge.AuditFailed, rep.Aborted
	}
	if err := s.record(ctx, summary); err != nil {
		return nil, err
	}
	if summary.Result != mdebridge.AuditRequested {
		return rep, nil
	}
	return rep, s.send(ctx, imp, valid, rep)
}

// diff counts, against the live indicators in the store, which of valid
// are new, would change, or are there already as they are.
func (s *Service) diff(ctx context.Context, valid []mdebridge.Indicator, rep *mdebridge.IndicatorImportReport) error {
	stored, _, err := s.opts.Store.FindIndicators(ctx, mdebridge.IndicatorFilter{})
	if err != nil {
		return err
	}
	byKey := make(map[string]mdebridge.Indicator, len(stored))
	for _, in := range stored {
		byKey[indicators.Key(in.IndicatorType, in.IndicatorValue)] = in
	}
	for _, in := range valid {
		old, ok := byKey[indicators.Key(in.IndicatorType, in.IndicatorValue)]
		switch {
		case !ok:
			rep.New++
		case indicators.Changed(old, in):
			rep.Changed++
		default:
			rep.Unchanged++
		}
	}
	return nil
}

// send submits valid indicators and records each result.
func (s *Service) send(ctx context.Context, imp mdebridge.IndicatorImport, valid []mdebridge.Indicator, rep *mdebridge.IndicatorImportReport) error {
	entry := func(in mdebridge.Indicator, res mdebridge.IndicatorResult) *mdebridge.AuditEntry {
		e := &mdebridge.AuditEntry{At: s.now(), Actor: imp.Actor, Operation: imp.Operation, TargetID: res.ID,
			TargetName: in.IndicatorType + " " + in.IndicatorValue, Comment: imp.Comment, RequestID: rep.RequestID, Result: mdebridge.AuditDone}
		if res.Failed {
			e.Result, e.Error = mdebridge.AuditFailed, res.Reason
		}
		e.Details, _ = json.Marshal(map[string]string{"action": in.Action, "severity": in.Severity})
		return e
	}
	if len(valid) == 1 && imp.Operation != "indicators.import" {
		// One indicator: POST, which answers with the indicator itself.
		rep.Calls++
		got, err := s.opts.Client.SubmitIndicator(ctx, valid[0])
		res := mdebridge.IndicatorResult{Value: valid[0].IndicatorValue, Type: valid[0].IndicatorType}
		if err != nil {
			res.Failed, res.Reason = true, err.Error()
			rep.Failed++
		} else {
			res.ID = got.ID
			rep.Imported++
			if serr := s.opts.Store.UpsertIndicators(ctx, 0, []mdebridge.Indicator{*got}); serr != nil {
				s.log.Warn("store indicator", "err", serr)
			}
		}
		rep.Results = append(rep.Results, res)
		if rerr := s.record(ctx, entry(valid[0], res)); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	for start := 0; start < len(valid); start += mde.MaxIndicatorBatch {
		batch := valid[start:min(start+mde.MaxIndicatorBatch, len(valid))]
		rep.Calls++
		results, err := s.opts.Client.ImportIndicators(ctx, batch)
		if err != nil {
			return fmt.Errorf("import call %d (indicators %d to %d): %w; the %d sent before are in MDE", rep.Calls, start+1, start+len(batch), err, rep.Imported)
		}
		var entries []*mdebridge.AuditEntry
		var stored []mdebridge.Indicator
		for i, res := range results {
			entries = append(entries, entry(batch[i], res))
			if res.Failed {
				rep.Failed++
				continue
			}
			rep.Imported++
			in := batch[i]
			in.ID = res.ID
			// MDE's import answers ids only: the store keeps what was sent
			// until the next sync brings MDE's own object.
			in.Raw, _ = json.Marshal(in)
			stored = append(stored, in)
		}
		rep.Results = append(rep.Results, results...)
		if err := s.record(ctx, entries...); err != nil {
			return err
		}
		if err := s.opts.Store.UpsertIndicators(ctx, 0, stored); err != nil {
			s.log.Warn("store imported indicators", "err", err)
		}
	}
	return nil
}

var numericID = regexp.MustCompile(`^[0-9]+$`)

// DeleteIndicators deletes indicators named by id or value: one with
// DELETE, more with BatchDelete (all or none per 500). It returns the ids
// deleted.
func (s *Service) DeleteIndicators(ctx context.Context, keys []string, comment, actor string) ([]string, error) {
	comment = strings.TrimSpace(comment)
	if comment == "" {
		return nil, usage("a comment is required: say why these indicators are deleted (--comment)")
	}
	if actor == "" {
		actor = "unknown"
	}
	var ids, names []string
	for _, k := range keys {
		in, err := s.opts.Store.FindIndicator(ctx, k)
		switch {
		case err == nil:
			ids, names = append(ids, in.ID), append(names, in.IndicatorType+" "+in.IndicatorValue)
		case errors.Is(err, mdebridge.ErrNotFound) && numericID.MatchString(strings.TrimSpace(k)):
			ids, names = append(ids, strings.TrimSpace(k)), append(names, "")
		default:
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, usage("name the indicators to delete: ids or values")
	}
	requestID := s.opts.NewID()
	entries := func(result string, err error) []*mdebridge.AuditEntry {
		var out []*mdebridge.AuditEntry
		for i, id := range ids {
			e := &mdebridge.AuditEntry{At: s.now(), Actor: actor, Operation: "indicators.delete", TargetID: id, TargetName: names[i],
				Comment: comment, RequestID: requestID, Result: result}
			if err != nil {
				e.Result, e.Error = mdebridge.AuditFailed, err.Error()
			}
			out = append(out, e)
		}
		return out
	}
	if err := s.record(ctx, entries(mdebridge.AuditRequested, nil)...); err != nil {
		return nil, err
	}
	var err error
	if len(ids) == 1 {
		err = s.opts.Client.DeleteIndicator(ctx, ids[0])
	} else {
		for start := 0; start < len(ids) && err == nil; start += mde.MaxIndicatorBatch {
			err = s.opts.Client.BatchDeleteIndicators(ctx, ids[start:min(start+mde.MaxIndicatorBatch, len(ids))])
		}
	}
	if rerr := s.record(ctx, entries(mdebridge.AuditDone, err)...); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	if err := s.opts.Store.RetireIndicators(ctx, ids); err != nil {
		s.log.Warn("retire deleted indicators", "err", err)
	}
	return ids, nil
}
