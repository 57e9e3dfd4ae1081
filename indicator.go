package mdebridge

import (
	"context"
	"encoding/json"
	"time"
)

// Indicator types, as MDE names them.
const (
	IndicatorFileSha1    = "FileSha1"
	IndicatorFileSha256  = "FileSha256"
	IndicatorFileMd5     = "FileMd5"
	IndicatorCertificate = "CertificateThumbprint"
	IndicatorIPAddress   = "IpAddress"
	IndicatorDomainName  = "DomainName"
	IndicatorURL         = "Url"
)

// Indicator is a custom indicator of compromise (GET /api/indicators). Field
// names are MDE's; Raw keeps the upstream object when it came from MDE.
type Indicator struct {
	ID                   string    `json:"id,omitempty"`
	IndicatorValue       string    `json:"indicatorValue"`
	IndicatorType        string    `json:"indicatorType"`
	Action               string    `json:"action"`
	Severity             string    `json:"severity,omitempty"`
	Title                string    `json:"title"`
	Description          string    `json:"description"`
	RecommendedActions   string    `json:"recommendedActions,omitempty"`
	Application          string    `json:"application,omitempty"`
	ExpirationTime       time.Time `json:"expirationTime,omitzero"`
	GenerateAlert        bool      `json:"generateAlert,omitempty"`
	RBACGroupNames       []string  `json:"rbacGroupNames,omitempty"`
	EducateURL           string    `json:"educateUrl,omitempty"`
	ExternalID           string    `json:"externalId,omitempty"`
	CreatedBy            string    `json:"createdBy,omitempty"`
	CreatedByDisplayName string    `json:"createdByDisplayName,omitempty"`
	CreatedBySource      string    `json:"createdBySource,omitempty"`
	LastUpdatedBy        string    `json:"lastUpdatedBy,omitempty"`
	CreationTime         time.Time `json:"creationTimeDateTimeUtc,omitzero"`
	LastUpdateTime       time.Time `json:"lastUpdateTime,omitzero"`

	Raw json.RawMessage `json:"-"`

	// Bookkeeping kept by the store.
	SyncedAt  time.Time  `json:"-"`
	RetiredAt *time.Time `json:"-"`
}

// IndicatorFilter selects indicators in the store. Empty fields do not filter.
type IndicatorFilter struct {
	Type           string
	Action         string
	Severity       string
	Value          string // indicatorValue contains, case-insensitive
	IncludeRetired bool
	Offset         int
	Limit          int
}

// IndicatorStore keeps the tenant's indicators with generations, like
// machines: a sync stamps what it saw, and only a complete pass retires the
// rest. Indicators written by a push (runID 0) survive the sync running
// meanwhile.
type IndicatorStore interface {
	UpsertIndicators(ctx context.Context, runID int64, indicators []Indicator) error
	// RetireIndicatorsNotSeen retires live indicators that run runID did not
	// see and that were not written after runStart.
	RetireIndicatorsNotSeen(ctx context.Context, runID int64, runStart time.Time) (int, error)
	// RetireIndicators retires the given ids at once (after a delete).
	RetireIndicators(ctx context.Context, ids []string) error
	FindIndicators(ctx context.Context, f IndicatorFilter) ([]Indicator, int, error)
	// FindIndicator looks one live indicator up by id or value; several
	// matches give *AmbiguousError, none an error wrapping ErrNotFound.
	FindIndicator(ctx context.Context, key string) (*Indicator, error)
}

// IndicatorSource lists every indicator the credentials may see.
type IndicatorSource interface {
	ListIndicators(ctx context.Context, page func([]Indicator) error) error
}

// IndicatorProblem is one entry of an indicator file that cannot be used.
type IndicatorProblem struct {
	Line    int    `json:"line"` // 1-based line (CSV, JSON) or object number (STIX)
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

// IndicatorResult is MDE's answer for one imported indicator.
type IndicatorResult struct {
	Value  string `json:"indicator"`
	Type   string `json:"type,omitempty"`
	ID     string `json:"id,omitempty"`
	Failed bool   `json:"isFailed"`
	Reason string `json:"failureReason,omitempty"`
}

// IndicatorImportReport says what an import did, or with DryRun would do.
type IndicatorImportReport struct {
	RequestID  string             `json:"requestId"`
	DryRun     bool               `json:"dryRun"`
	Atomic     bool               `json:"atomic"`
	Entries    int                `json:"entries"`    // read from the input
	Valid      int                `json:"valid"`      // usable after validation
	Duplicates int                `json:"duplicates"` // same type and value as an earlier entry
	Problems   []IndicatorProblem `json:"problems"`
	// The diff against the indicators in the store.
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	// What MDE answered (not on a dry run).
	Calls    int               `json:"importCalls"`
	Imported int               `json:"imported"`
	Failed   int               `json:"failed"`
	Results  []IndicatorResult `json:"results,omitempty"`
	// Aborted says why nothing was sent (atomic import with problems).
	Aborted string `json:"aborted,omitempty"`
}
