package query

import (
	"errors"
	"fmt"
)

// Limits of Parse.
const (
	// MaxLength is the longest query Parse accepts, in bytes: IoT Hub's
	// limit on a query's text is 8,192 characters.
	MaxLength = 8192
	// MaxDepth bounds how deeply conditions may nest (parentheses, NOT,
	// IS_DEFINED, chained comparisons), so parsing and evaluation recurse
	// a bounded number of times.
	MaxDepth = 32
)

// Sentinel errors; every error Parse returns is an *Error matching one.
var (
	// ErrSyntax means the text is not a query of the language.
	ErrSyntax = errors.New("query: syntax error")
	// ErrUnsupported means the text uses IoT Hub query syntax this subset
	// does not implement; the *Error's Msg names it.
	ErrUnsupported = errors.New("query: not supported")
	// ErrTooLong means the text is longer than MaxLength bytes.
	ErrTooLong = errors.New("query: too long")
	// ErrTooDeep means conditions nest deeper than MaxDepth.
	ErrTooDeep = errors.New("query: nested too deeply")
)

// Error is a rejected query: the class (one of the sentinels), the byte
// offset in the query where the problem starts and what the problem is.
type Error struct {
	Err error  // ErrSyntax, ErrUnsupported, ErrTooLong or ErrTooDeep
	Pos int    // byte offset in the query text
	Msg string // what is wrong or unsupported, e.g. "GROUP BY is not supported"
}

func errorf(class error, pos int, format string, args ...any) *Error {
	return &Error{Err: class, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Error formats e as "query: not supported: GROUP BY is not supported (at offset 31)".
func (e *Error) Error() string {
	return fmt.Sprintf("%v: %s (at offset %d)", e.Err, e.Msg, e.Pos)
}

// Unwrap returns the sentinel class of e.
func (e *Error) Unwrap() error { return e.Err }
