// Package query parses and evaluates the subset of IoT Hub's query language
// that the emulator's POST /devices/query serves, over twin JSON documents.
//
// The accepted grammar (keywords in any case):
//
//	query     = "SELECT" selection "FROM" source [ "WHERE" condition ]
//	selection = "*" | "COUNT" "(" ")" [ "AS" name ]
//	source    = "devices" | "devices.modules"
//	condition = or
//	or        = and { "OR" and }
//	and       = not { "AND" not }
//	not       = "NOT" not | compare
//	compare   = operand [ ( "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ) operand ]
//	operand   = path | literal | "IS_DEFINED" "(" condition ")" | "(" condition ")"
//	path      = name { "." name }          e.g. tags.location.region, properties.reported.$version
//	literal   = 'string' | "string" | number | true | false | null
//
// A path may start with the source's own name ("devices.tags.x" in a query
// FROM devices); it names a member of the twin document, so deviceId, moduleId,
// status, connectionState, tags.…, properties.desired.… and
// properties.reported.… all work, as does any other twin field.
//
// # Semantics
//
// Evaluation follows the document-database rules IoT Hub's language comes
// from: a path that names nothing is undefined; a comparison with an
// undefined side, or between values of different types, is undefined, except
// that = between different types is false and != true when both sides are
// defined; AND, OR and NOT use three-valued logic; WHERE keeps a twin only
// when the condition is true. Strings compare by bytes, numbers as float64,
// false < true; objects and arrays compare with = and != only (deep equality).
//
// # Errors
//
// Parse returns an *Error matching ErrSyntax for input that is not a query,
// ErrUnsupported for IoT Hub syntax this subset does not implement (the
// message names it: "GROUP BY", "function STARTSWITH", "IN", "selecting
// fields", …), ErrTooLong over MaxLength bytes and ErrTooDeep past MaxDepth
// nested conditions. Parse never panics.
//
// # Concurrency
//
// A *Query is immutable once parsed and safe for concurrent use.
package query
