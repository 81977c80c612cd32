package query

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// twins are device twins as the emulator's GET /twins/{id} returns them,
// decoded the way the REST layer decodes them (json.Number numbers).
var twinsJSON = []string{
	`{"deviceId":"d1","etag":"AAAAAAAAAAE=","version":3,"status":"enabled","connectionState":"Connected",
	  "tags":{"location":{"region":"US","building":43},"env":"prod","floor":3,"vip":true},
	  "properties":{"desired":{"telemetryInterval":30,"$version":2},"reported":{"fw":"1.2.0","battery":87.5,"$version":5}}}`,
	`{"deviceId":"d2","etag":"AAAAAAAAAAI=","version":1,"status":"disabled","connectionState":"Disconnected",
	  "tags":{"location":{"region":"EU"},"env":"dev","floor":1,"vip":false},
	  "properties":{"desired":{"$version":1},"reported":{"fw":"1.1.0","$version":1}}}`,
	`{"deviceId":"d3","etag":"AAAAAAAAAAM=","version":1,"status":"enabled","connectionState":"Disconnected",
	  "tags":{},"properties":{"desired":{"telemetryInterval":"fast","$version":1},"reported":{"$version":1,"nested":{"a":[1,2],"n":null}}}}`,
	`{"deviceId":"it's","version":1,"status":"enabled","connectionState":"Connected","tags":{"env":"prod","floor":10},
	  "properties":{"desired":{"$version":1},"reported":{"$version":1}}}`,
}

func decodeTwins(t testing.TB) []any {
	t.Helper()
	docs := make([]any, len(twinsJSON))
	for i, s := range twinsJSON {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		if err := d.Decode(&docs[i]); err != nil {
			t.Fatalf("twin %d: %v", i, err)
		}
	}
	return docs
}

func matching(t *testing.T, q *Query, docs []any) []string {
	t.Helper()
	var ids []string
	for _, d := range docs {
		if q.Match(d) {
			ids = append(ids, d.(map[string]any)["deviceId"].(string))
		}
	}
	return ids
}

func TestMatch(t *testing.T) {
	docs := decodeTwins(t)
	all := []string{"d1", "d2", "d3", "it's"}
	tests := []struct {
		q    string
		want []string
	}{
		{"SELECT * FROM devices", all},
		{"select * from DEVICES", all},
		{"SELECT * FROM devices WHERE deviceId = 'd1'", []string{"d1"}},
		{`SELECT * FROM devices WHERE deviceId = "d2"`, []string{"d2"}},
		{`SELECT * FROM devices WHERE deviceId = 'it\'s'`, []string{"it's"}},
		{`SELECT * FROM devices WHERE deviceId = 'it''s'`, []string{"it's"}},
		{"SELECT * FROM devices WHERE deviceId = 'D1'", nil},
		{"SELECT * FROM devices WHERE devices.deviceId = 'd1'", []string{"d1"}},
		{"SELECT * FROM devices WHERE status = 'enabled'", []string{"d1", "d3", "it's"}},
		{"SELECT * FROM devices WHERE status != 'enabled'", []string{"d2"}},
		{"SELECT * FROM devices WHERE status <> 'enabled'", []string{"d2"}},
		{"SELECT * FROM devices WHERE connectionState = 'Connected'", []string{"d1", "it's"}},
		{"SELECT * FROM devices WHERE tags.location.region = 'US'", []string{"d1"}},
		{"SELECT * FROM devices WHERE devices.tags.location.region = 'EU'", []string{"d2"}},
		// A missing field: undefined, so neither = nor != holds.
		{"SELECT * FROM devices WHERE tags.location.region != 'US'", []string{"d2"}},
		{"SELECT * FROM devices WHERE NOT (tags.location.region = 'US')", []string{"d2"}},
		{"SELECT * FROM devices WHERE tags.floor > 1", []string{"d1", "it's"}},
		{"SELECT * FROM devices WHERE tags.floor >= 1", []string{"d1", "d2", "it's"}},
		{"SELECT * FROM devices WHERE tags.floor < 3", []string{"d2"}},
		{"SELECT * FROM devices WHERE tags.floor <= 3", []string{"d1", "d2"}},
		{"SELECT * FROM devices WHERE tags.floor = 3.0", []string{"d1"}},
		{"SELECT * FROM devices WHERE tags.floor = 3e0", []string{"d1"}},
		{"SELECT * FROM devices WHERE tags.floor > -1", []string{"d1", "d2", "it's"}},
		// Strings and numbers never compare; = between them is false.
		{"SELECT * FROM devices WHERE tags.floor = '3'", nil},
		{"SELECT * FROM devices WHERE tags.floor != '3'", []string{"d1", "d2", "it's"}},
		{"SELECT * FROM devices WHERE tags.floor < 'z'", nil},
		{"SELECT * FROM devices WHERE tags.env < 'q'", []string{"d1", "d2", "it's"}},
		{"SELECT * FROM devices WHERE tags.env > 'dev'", []string{"d1", "it's"}},
		{"SELECT * FROM devices WHERE tags.vip = true", []string{"d1"}},
		{"SELECT * FROM devices WHERE tags.vip = FALSE", []string{"d2"}},
		{"SELECT * FROM devices WHERE tags.vip", []string{"d1"}},
		{"SELECT * FROM devices WHERE NOT tags.vip", []string{"d2"}},
		{"SELECT * FROM devices WHERE tags.vip < true", []string{"d2"}},
		{"SELECT * FROM devices WHERE properties.desired.telemetryInterval = 30", []string{"d1"}},
		{"SELECT * FROM devices WHERE properties.desired.telemetryInterval = 'fast'", []string{"d3"}},
		{"SELECT * FROM devices WHERE properties.reported.fw = '1.2.0'", []string{"d1"}},
		{"SELECT * FROM devices WHERE properties.reported.battery > 50.25", []string{"d1"}},
		{"SELECT * FROM devices WHERE properties.reported.$version > 1", []string{"d1"}},
		{"SELECT * FROM devices WHERE properties.reported.nested.n = null", []string{"d3"}},
		{"SELECT * FROM devices WHERE properties.reported.nested.a = properties.reported.nested.a", []string{"d3"}},
		{"SELECT * FROM devices WHERE tags = tags", all},
		{"SELECT * FROM devices WHERE tags.location = tags.location", []string{"d1", "d2"}},
		{"SELECT * FROM devices WHERE tags.location.region.x = 'US'", nil},
		{"SELECT * FROM devices WHERE IS_DEFINED(tags.location)", []string{"d1", "d2"}},
		{"SELECT * FROM devices WHERE is_defined(tags.location) = false", []string{"d3", "it's"}},
		{"SELECT * FROM devices WHERE NOT IS_DEFINED(tags.location)", []string{"d3", "it's"}},
		{"SELECT * FROM devices WHERE IS_DEFINED(properties.reported.nested.n)", []string{"d3"}},
		{"SELECT * FROM devices WHERE IS_DEFINED('x')", all},
		{"SELECT * FROM devices WHERE tags.env = 'prod' AND tags.floor = 3", []string{"d1"}},
		{"SELECT * FROM devices WHERE tags.env = 'prod' OR status = 'disabled'", []string{"d1", "d2", "it's"}},
		{"SELECT * FROM devices WHERE tags.env = 'prod' and (tags.floor = 10 or tags.vip = true)", []string{"d1", "it's"}},
		{"SELECT * FROM devices WHERE tags.env = 'dev' OR tags.env = 'prod' AND tags.floor = 10", []string{"d2", "it's"}},
		{"SELECT * FROM devices WHERE (tags.env = 'dev' OR tags.env = 'prod') AND tags.floor = 10", []string{"it's"}},
		// Three-valued logic: undefined OR true is true, undefined AND false is false.
		{"SELECT * FROM devices WHERE tags.location.region = 'US' OR tags.floor = 10", []string{"d1", "it's"}},
		{"SELECT * FROM devices WHERE NOT (tags.location.region = 'US' AND tags.floor = 3)", []string{"d2", "it's"}},
		{"SELECT * FROM devices WHERE NOT NOT (status = 'disabled')", []string{"d2"}},
		{"SELECT * FROM devices WHERE 1 = 1", all},
		{"SELECT * FROM devices WHERE 'a' < 'b'", all},
		{"SELECT * FROM devices WHERE 'US' = tags.location.region", []string{"d1"}},
		{"SELECT * FROM devices WHERE (tags.floor = 3) = true", []string{"d1"}},
		{"SELECT * FROM devices WHERE null = null", all},
		{"SELECT * FROM devices WHERE deviceId = 'd1' OR deviceId = 'd3'", []string{"d1", "d3"}},
		{"SELECT * FROM devices\n\tWHERE\r\ndeviceId='d1'", []string{"d1"}},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			q, err := Parse(tt.q)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := matching(t, q, docs); !slices.Equal(got, tt.want) {
				t.Errorf("matches %q, want %q", got, tt.want)
			}
			// The canonical form selects the same twins.
			q2, err := Parse(q.String())
			if err != nil {
				t.Fatalf("Parse(%q): %v", q.String(), err)
			}
			if got := matching(t, q2, docs); !slices.Equal(got, tt.want) {
				t.Errorf("canonical %q matches %q, want %q", q.String(), got, tt.want)
			}
		})
	}
}

func TestParseSelection(t *testing.T) {
	tests := []struct {
		q      string
		count  bool
		alias  string
		from   Source
		canon  string
		source string
	}{
		{"SELECT * FROM devices", false, "", Devices, "SELECT * FROM devices", "devices"},
		{"SELECT * FROM devices.modules", false, "", Modules, "SELECT * FROM devices.modules", "devices.modules"},
		{"SELECT COUNT() AS n FROM devices", true, "n", Devices, "SELECT COUNT() AS n FROM devices", "devices"},
		{"select count() as numberOfDevices from devices where status='enabled'", true, "numberOfDevices", Devices,
			"SELECT COUNT() AS numberOfDevices FROM devices WHERE status = 'enabled'", "devices"},
		{"SELECT COUNT() FROM devices.modules", true, "$1", Modules, "SELECT COUNT() AS $1 FROM devices.modules", "devices.modules"},
		{"SELECT * FROM devices.modules WHERE devices.modules.moduleId = 'm'", false, "", Modules,
			"SELECT * FROM devices.modules WHERE moduleId = 'm'", "devices.modules"},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.q, err)
		}
		if q.Count != tt.count || q.CountAlias != tt.alias || q.From != tt.from {
			t.Errorf("Parse(%q) = count %v alias %q from %v", tt.q, q.Count, q.CountAlias, q.From)
		}
		if got := q.String(); got != tt.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.q, got, tt.canon)
		}
		if got := q.From.String(); got != tt.source {
			t.Errorf("From.String() = %q, want %q", got, tt.source)
		}
	}
}

func TestModuleQuery(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"deviceId":"d1","moduleId":"m1","properties":{"reported":{"status":"scanning"}}}`), &doc); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]bool{
		"SELECT * FROM devices.modules WHERE moduleId = 'm1'":                                   true,
		"SELECT * FROM devices.modules WHERE devices.modules.moduleId = 'm1'":                   true,
		"SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning'":           true,
		"SELECT * FROM devices.modules WHERE deviceId = 'd1' AND moduleId = 'm2'":               false,
		"SELECT COUNT() AS c FROM devices.modules WHERE properties.reported.status = 'stopped'": false,
	} {
		p, err := Parse(q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", q, err)
		}
		if got := p.Match(doc); got != want {
			t.Errorf("%q: Match = %v, want %v", q, got, want)
		}
	}
}

func TestMatchNumberForms(t *testing.T) {
	q, err := Parse("SELECT * FROM devices WHERE tags.n = 7 AND tags.f < 7.5")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []map[string]any{
		{"tags": map[string]any{"n": 7, "f": float32(7.25)}},
		{"tags": map[string]any{"n": int64(7), "f": 7.0}},
		{"tags": map[string]any{"n": json.Number("7"), "f": json.Number("-1e3")}},
	} {
		if !q.Match(doc) {
			t.Errorf("no match for %v", doc)
		}
	}
	for _, doc := range []any{
		map[string]any{"tags": map[string]any{"n": json.Number("x7"), "f": 1.0}},
		map[string]any{"tags": []any{1}},
		nil, "string", 3.0,
	} {
		if q.Match(doc) {
			t.Errorf("match for %v", doc)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		q   string
		err error
		msg string // a substring of Msg
		pos int    // -1: do not check
	}{
		{"", ErrSyntax, "expected SELECT", 0},
		{"DELETE FROM devices", ErrSyntax, "expected SELECT", 0},
		{"SELECT", ErrSyntax, "end of the query", 6},
		{"SELECT * devices", ErrSyntax, "expected FROM", 9},
		{"SELECT * FROM", ErrSyntax, "expected devices", 13},
		{"SELECT * FROM devices WHERE", ErrSyntax, "expected a value", 27},
		{"SELECT * FROM devices WHERE deviceId =", ErrSyntax, "expected a value", -1},
		{"SELECT * FROM devices WHERE deviceId = 'x", ErrSyntax, "unterminated string", 39},
		{"SELECT * FROM devices WHERE deviceId = 'x\\", ErrSyntax, "unterminated string", -1},
		{`SELECT * FROM devices WHERE deviceId = 'x\q'`, ErrSyntax, "unknown escape", -1},
		{`SELECT * FROM devices WHERE deviceId = '\u12'`, ErrSyntax, "malformed \\u escape", -1},
		{`SELECT * FROM devices WHERE deviceId = '\uzzzz'`, ErrSyntax, "malformed \\u escape", -1},
		{"SELECT * FROM devices WHERE (deviceId = 'x'", ErrSyntax, "expected ')'", -1},
		{"SELECT * FROM devices WHERE deviceId = 'x')", ErrSyntax, "expected the end", -1},
		{"SELECT * FROM devices WHERE deviceId ! 'x'", ErrSyntax, "'!' must be followed by '='", 37},
		{"SELECT * FROM devices WHERE deviceId == 'x'", ErrSyntax, "expected a value", -1},
		{"SELECT * FROM devices WHERE tags.floor = 12abc", ErrSyntax, "malformed number", -1},
		{"SELECT * FROM devices WHERE tags.floor = 1e999", ErrSyntax, "out of range", -1},
		{"SELECT * FROM devices WHERE tags. = 1", ErrSyntax, "expected a name after '.'", -1},
		{"SELECT * FROM devices WHERE AND", ErrSyntax, "expected a value", -1},
		{"SELECT * FROM devices WHERE IS_DEFINED(a, b)", ErrSyntax, "one argument", -1},
		{"SELECT * FROM devices WHERE IS_DEFINED(a", ErrSyntax, "expected ')'", -1},
		{"SELECT * FROM devices WHERE deviceId = 'é' AND x = \xff", ErrSyntax, "invalid UTF-8", -1},
		{"SELECT * FROM devices WHERE deviceId = 'x' \u00e9", ErrSyntax, "unexpected character", -1},
		{"SELECT * FROM devices WHERE deviceId = '\xff'", ErrSyntax, "invalid UTF-8", -1},
		{"SELECT COUNT( FROM devices", ErrUnsupported, "COUNT with an argument", 7},
		{"SELECT COUNT FROM devices", ErrSyntax, "expected '(' after COUNT", -1},
		{"SELECT COUNT() AS FROM devices", ErrSyntax, "expected FROM", -1},
		{"SELECT COUNT() AS 3 FROM devices", ErrSyntax, "expected a name after AS", -1},
		{"SELECT COUNT(*) FROM devices", ErrUnsupported, "COUNT with an argument", -1},
		{"SELECT COUNT() AS n, deviceId FROM devices", ErrUnsupported, "more than COUNT()", -1},
		{"SELECT deviceId FROM devices", ErrUnsupported, "selecting fields", 7},
		{"SELECT deviceId, tags FROM devices", ErrUnsupported, "selecting fields", 7},
		{"SELECT TOP 10 * FROM devices", ErrUnsupported, "TOP", 7},
		{"SELECT DISTINCT * FROM devices", ErrUnsupported, "DISTINCT", 7},
		{"SELECT * FROM devices.jobs", ErrUnsupported, "FROM devices.jobs", 14},
		{"SELECT * FROM devices.", ErrSyntax, "collection name", -1},
		{"SELECT * FROM configurations", ErrUnsupported, "FROM configurations", 14},
		{"SELECT * FROM devices GROUP BY tags.env", ErrUnsupported, "GROUP BY", 22},
		{"SELECT * FROM devices WHERE status = 'x' ORDER BY deviceId", ErrUnsupported, "ORDER BY", -1},
		{"SELECT * FROM devices WHERE deviceId IN ['a', 'b']", ErrUnsupported, "IN operator", 37},
		{"SELECT * FROM devices WHERE deviceId NIN ['a']", ErrUnsupported, "NIN operator", -1},
		{"SELECT * FROM devices WHERE tags.x IS NULL", ErrUnsupported, "IS (use IS_DEFINED())", -1},
		{"SELECT * FROM devices WHERE STARTSWITH(deviceId, 'd')", ErrUnsupported, "function STARTSWITH", 28},
		{"SELECT * FROM devices WHERE is_null(tags.x)", ErrUnsupported, "function IS_NULL", -1},
		{"SELECT * FROM devices WHERE frobnicate(tags.x)", ErrUnsupported, "unknown function frobnicate", -1},
		{"SELECT * FROM devices WHERE tags.a + 1 = 2", ErrUnsupported, "arithmetic ('+')", -1},
		{"SELECT * FROM devices WHERE tags.a * 2 = 2", ErrUnsupported, "arithmetic ('*')", -1},
		{"SELECT * FROM devices WHERE tags.a = -tags.b", ErrUnsupported, "arithmetic ('-')", -1},
		{"SELECT * FROM devices WHERE tags.a || 'x' = 'y'", ErrUnsupported, "concatenation", -1},
		{"SELECT * FROM devices WHERE tags.a = [1]", ErrUnsupported, "array literals", -1},
		{"SELECT * FROM devices WHERE tags.a = {}", ErrUnsupported, "object literals", -1},
		{"SELECT * FROM devices WHERE tags['a b'] = 1", ErrUnsupported, "bracket property access", -1},
		{"SELECT * FROM devices WHERE tags.['a b'] = 1", ErrUnsupported, "bracket property access", -1},
		{"SELECT * FROM devices WHERE deviceId = 'a' ; DROP", ErrSyntax, "expected the end", -1},
		{"SELECT * FROM devices WHERE " + strings.Repeat("(", MaxDepth) + "a = 1" + strings.Repeat(")", MaxDepth), ErrTooDeep, "deeper than", -1},
		{"SELECT * FROM devices WHERE " + strings.Repeat("NOT ", MaxDepth+1) + "a", ErrTooDeep, "deeper than", -1},
		{"SELECT * FROM devices WHERE a" + strings.Repeat(" = a", MaxDepth+1), ErrTooDeep, "deeper than", -1},
		{"SELECT * FROM devices WHERE " + strings.Repeat("IS_DEFINED(", MaxDepth) + "a" + strings.Repeat(")", MaxDepth), ErrTooDeep, "deeper than", -1},
		{"SELECT * FROM devices WHERE deviceId = '" + strings.Repeat("x", MaxLength) + "'", ErrTooLong, "longer than 8192", MaxLength},
	}
	for _, tt := range tests {
		name := tt.q
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			q, err := Parse(tt.q)
			if err == nil {
				t.Fatalf("Parse = %q, want an error", q.String())
			}
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v does not match %v", err, tt.err)
			}
			if !strings.Contains(qe.Msg, tt.msg) {
				t.Errorf("Msg %q does not contain %q", qe.Msg, tt.msg)
			}
			if tt.pos >= 0 && qe.Pos != tt.pos {
				t.Errorf("Pos = %d, want %d", qe.Pos, tt.pos)
			}
			if !strings.HasPrefix(err.Error(), "query: ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestParseLimitsAccepted(t *testing.T) {
	// Exactly MaxLength bytes and nesting just inside MaxDepth parse.
	base := "SELECT * FROM devices WHERE deviceId = ''"
	q := base[:len(base)-1] + strings.Repeat("x", MaxLength-len(base)) + "'"
	if len(q) != MaxLength {
		t.Fatalf("len %d", len(q))
	}
	if _, err := Parse(q); err != nil {
		t.Errorf("Parse of %d bytes: %v", len(q), err)
	}
	n := MaxDepth - 2 // the WHERE condition and its comparison count too
	deep := "SELECT * FROM devices WHERE " + strings.Repeat("(", n) + "a = 1" + strings.Repeat(")", n)
	p, err := Parse(deep)
	if err != nil {
		t.Fatalf("Parse at depth %d: %v", n, err)
	}
	if !p.Match(map[string]any{"a": 1.0}) {
		t.Error("deep query does not match")
	}
}

func TestStringLiterals(t *testing.T) {
	tests := []struct{ lit, want string }{
		{`'a\"b'`, `a"b`},
		{`"a\'b"`, `a'b`},
		{`"a""b"`, `a"b`},
		{`'\\\/\b\f\n\r\t'`, "\\/\b\f\n\r\t"},
		{`'\u00e9\u20AC'`, "é€"},
		{`'\ud83d\ude00'`, "😀"},
		{`'\ud83d'`, "\uFFFD"},
		{`'héllo'`, "héllo"},
		{`''`, ""},
	}
	for _, tt := range tests {
		q, err := Parse("SELECT * FROM devices WHERE tags.s = " + tt.lit)
		if err != nil {
			t.Fatalf("%s: %v", tt.lit, err)
		}
		if !q.Match(map[string]any{"tags": map[string]any{"s": tt.want}}) {
			t.Errorf("%s does not equal %q (canonical %s)", tt.lit, tt.want, q.String())
		}
		q2, err := Parse(q.String())
		if err != nil || q2.String() != q.String() {
			t.Errorf("canonical %q does not round trip: %v", q.String(), err)
		}
	}
}

func TestStringCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"select * from devices where a=1 and b=2 or c=3", "SELECT * FROM devices WHERE a = 1 AND b = 2 OR c = 3"},
		{"SELECT * FROM devices WHERE a=1 and (b=2 or c=3)", "SELECT * FROM devices WHERE a = 1 AND (b = 2 OR c = 3)"},
		{"SELECT * FROM devices WHERE (((a = 1)))", "SELECT * FROM devices WHERE a = 1"},
		{"SELECT * FROM devices WHERE a = 1 AND (b = 2 AND c = 3)", "SELECT * FROM devices WHERE a = 1 AND (b = 2 AND c = 3)"},
		{"SELECT * FROM devices WHERE not a = 1", "SELECT * FROM devices WHERE NOT a = 1"},
		{"SELECT * FROM devices WHERE (not a) = 1", "SELECT * FROM devices WHERE (NOT a) = 1"},
		{"SELECT * FROM devices WHERE a = (b = c)", "SELECT * FROM devices WHERE a = (b = c)"},
		{"SELECT * FROM devices WHERE a <> -2.50", "SELECT * FROM devices WHERE a != -2.5"},
		{"SELECT * FROM devices WHERE devices.true = 1", "SELECT * FROM devices WHERE devices.true = 1"},
		{"SELECT * FROM devices WHERE devices.devices.x = 1", "SELECT * FROM devices WHERE devices.devices.x = 1"},
		{"SELECT * FROM devices WHERE s = 'it''s\n'", `SELECT * FROM devices WHERE s = 'it\'s\n'`},
		{"SELECT * FROM devices WHERE s = '\x01'", `SELECT * FROM devices WHERE s = '\u0001'`},
		{"SELECT * FROM devices WHERE x = NULL or y = True", "SELECT * FROM devices WHERE x = null OR y = true"},
		{"SELECT * FROM devices WHERE .5 < x", "SELECT * FROM devices WHERE 0.5 < x"},
	}
	for _, tt := range tests {
		q, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if got := q.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	docs := decodeTwins(b)
	q, err := Parse("SELECT * FROM devices WHERE tags.env = 'prod' AND (tags.floor > 2 OR NOT IS_DEFINED(tags.location))")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.Match(docs[i%len(docs)])
	}
}
