package query

import (
	"errors"
	"testing"
)

// querySeeds are queries of every construct the subset accepts, plus near
// misses and IoT Hub syntax it rejects by name.
var querySeeds = []string{
	"SELECT * FROM devices",
	"SELECT * FROM devices.modules WHERE moduleId = 'm1' AND deviceId = 'd1'",
	"SELECT COUNT() AS n FROM devices WHERE status = 'enabled'",
	"SELECT COUNT() FROM devices.modules",
	"select * from devices where tags.location.region = 'US' or tags.floor >= 3.5e1",
	"SELECT * FROM devices WHERE NOT (properties.reported.fw <> '1.0' AND IS_DEFINED(properties.desired.x))",
	"SELECT * FROM devices WHERE connectionState = \"Connected\" AND properties.reported.$version > -1",
	"SELECT * FROM devices WHERE devices.tags.s = 'it\\'s \\u00e9\\ud83d\\ude00' OR tags.t = 'a''b'",
	"SELECT * FROM devices WHERE tags.b = true AND tags.n = null AND (tags.c = false) = true",
	"SELECT * FROM devices WHERE a = b = c",
	"SELECT * FROM devices WHERE ((((a < .5))))",
	"SELECT * FROM devices WHERE deviceId IN ['a','b']",
	"SELECT * FROM devices WHERE STARTSWITH(deviceId, 'x')",
	"SELECT deviceId FROM devices GROUP BY tags.env",
	"SELECT * FROM devices WHERE tags.x = 'unterminated",
	"SELECT * FROM devices WHERE tags.a + 1 = 2",
	"SELECT TOP 5 * FROM devices.jobs",
}

// fuzzDocs are twin documents the parsed queries are evaluated over.
var fuzzDocs = []any{
	nil,
	"not an object",
	map[string]any{},
	map[string]any{
		"deviceId": "d1", "moduleId": "m1", "status": "enabled", "connectionState": "Connected", "version": 3.0,
		"tags": map[string]any{"location": map[string]any{"region": "US"}, "floor": 3.0, "b": true, "n": nil, "arr": []any{1.0, "x"}},
		"properties": map[string]any{
			"desired":  map[string]any{"x": 1.0, "$version": 2.0},
			"reported": map[string]any{"fw": "1.0", "$version": 5.0},
		},
	},
}

// FuzzQuery checks that Parse never panics, that every error is an *Error of
// one of the four classes, that Match never panics, and that the canonical
// form parses back to itself and selects the same documents.
func FuzzQuery(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("error of no class: %v", err)
			}
			if qe.Pos < 0 || qe.Pos > len(s) {
				t.Fatalf("error offset %d outside the %d-byte query", qe.Pos, len(s))
			}
			return
		}
		canon := q.String()
		q2, err := Parse(canon)
		if errors.Is(err, ErrTooLong) && len(canon) > len(s) {
			return // escaping made the canonical form longer than MaxLength
		}
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if again := q2.String(); again != canon {
			t.Fatalf("canonical form not stable:\n%q\n%q", canon, again)
		}
		if q2.Count != q.Count || q2.CountAlias != q.CountAlias || q2.From != q.From {
			t.Fatalf("canonical form %q changes the selection", canon)
		}
		for i, d := range fuzzDocs {
			if a, b := q.Match(d), q2.Match(d); a != b {
				t.Fatalf("doc %d: %q matches %v, its canonical form %q %v", i, s, a, canon, b)
			}
		}
	})
}
