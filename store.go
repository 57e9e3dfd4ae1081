package mdebridge

// Store is everything the product keeps: one implementation per database,
// each passing the storetest conformance suite. Each feature adds its own
// interface here, one per line.
type Store interface {
	MachineStore
	LogonUserStore
	SyncStore
	StatusStore
	AlertStore
	IncidentStore
	ActionStore
	AuditStore
	BulkStore
	IndicatorStore
	ExposureStore
	Close() error
}
