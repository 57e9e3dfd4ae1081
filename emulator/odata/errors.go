package odata

import "fmt"

// Error is an invalid query. Its message is meant for the API caller, worded
// like Microsoft's OData stack words it; the emulator answers it as
// 400 ODataError.
type Error struct {
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}
