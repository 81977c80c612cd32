package iothub

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// obj decodes a JSON object the way the package does (json.Number).
func obj(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := decodeJSONObject([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMergePatch(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
	}{
		{"add", `{}`, `{"a":1}`, `{"a":1}`},
		{"replace", `{"a":1}`, `{"a":"x"}`, `{"a":"x"}`},
		{"null-deletes", `{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{"null-absent-is-noop", `{"b":2}`, `{"a":null}`, `{"b":2}`},
		{"nested-merge", `{"a":{"x":1,"y":2}}`, `{"a":{"y":3,"z":4}}`, `{"a":{"x":1,"y":3,"z":4}}`},
		{"nested-null-deletes", `{"a":{"x":1,"y":2}}`, `{"a":{"x":null}}`, `{"a":{"y":2}}`},
		{"object-replaces-scalar", `{"a":1}`, `{"a":{"b":{"c":null,"d":1}}}`, `{"a":{"b":{"d":1}}}`},
		{"scalar-replaces-object", `{"a":{"b":1}}`, `{"a":true}`, `{"a":true}`},
		{"array-replaces", `{"a":[1,2]}`, `{"a":[3]}`, `{"a":[3]}`},
		{"big-int-exact", `{}`, `{"n":4503599627370495}`, `{"n":4503599627370495}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patch := obj(t, tc.patch)
			got := MergePatch(obj(t, tc.doc), patch)
			if js(t, got) != js(t, obj(t, tc.want)) {
				t.Errorf("got %s, want %s", js(t, got), tc.want)
			}
			// The result shares nothing with the patch.
			if m, ok := got["a"].(map[string]any); ok {
				m["mutated"] = true
				if pm, ok := patch["a"].(map[string]any); ok && pm["mutated"] != nil {
					t.Error("result aliases the patch")
				}
			}
			// DiffPatch is MergePatch's inverse.
			before := obj(t, tc.doc)
			after := obj(t, js(t, MergePatch(obj(t, tc.doc), obj(t, tc.patch))))
			d := DiffPatch(before, after)
			if js(t, MergePatch(before, d)) != js(t, after) {
				t.Errorf("DiffPatch %s does not turn %s into %s", js(t, d), tc.doc, js(t, after))
			}
		})
	}
	if MergePatch(nil, map[string]any{"a": "b"})["a"] != "b" {
		t.Error("nil dst")
	}
}

func TestDiffPatch(t *testing.T) {
	d := DiffPatch(obj(t, `{"a":1,"b":{"x":1,"y":2},"c":3}`), obj(t, `{"a":1,"b":{"x":1,"y":5},"d":4}`))
	if got, want := js(t, d), `{"b":{"y":5},"c":null,"d":4}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if d := DiffPatch(obj(t, `{"a":{"b":1}}`), obj(t, `{"a":{"b":1}}`)); d == nil || len(d) != 0 {
		t.Errorf("equal docs: %v", d)
	}
}

func TestParseTwinPatchLimits(t *testing.T) {
	deep := func(n int) string { // the section and n-1 objects nested below it
		return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
	}
	deepArr := func(n int) string {
		return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + "}"
	}
	ok := []struct{ name, body string }{
		{"empty", `{}`},
		{"types", `{"s":"x","n":1.5,"i":-4503599627370496,"b":true,"z":null,"o":{},"arr":[1,"a",null,{"k":1}]}`},
		{"depth-10", deep(11)},
		{"array-depth-10", deepArr(10)},
		{"key-1024", `{"` + strings.Repeat("k", 1024) + `":1}`},
		{"string-4096", `{"s":"` + strings.Repeat("x", 4096) + `"}`},
		{"unicode-key", `{"température":1}`},
		{"float-exponent", `{"f":1e300}`},
	}
	for _, tc := range ok {
		t.Run("ok/"+tc.name, func(t *testing.T) {
			if _, err := ParseTwinPatch([]byte(tc.body)); err != nil {
				t.Errorf("rejected: %v", err)
			}
		})
	}
	bad := []struct{ name, body string }{
		{"not-json", `{"a":`},
		{"trailing-data", `{"a":1} {}`},
		{"not-object", `[1]`},
		{"string-top", `"x"`},
		{"dot-key", `{"a.b":1}`},
		{"dollar-key", `{"$version":1}`},
		{"dollar-inside-key", `{"a$b":1}`},
		{"space-key", `{"a b":1}`},
		{"c0-key", `{"a\u0001":1}`},
		{"c1-key", `{"a\u0085":1}`},
		{"del-key", `{"a\u007f":1}`},
		{"empty-key", `{"":1}`},
		{"nested-bad-key", `{"o":{"x.y":1}}`},
		{"depth-11", deep(12)},
		{"array-depth-11", deepArr(11)},
		{"key-1025", `{"` + strings.Repeat("k", 1025) + `":1}`},
		{"string-4097", `{"s":"` + strings.Repeat("x", 4097) + `"}`},
		{"int-too-big", `{"i":4503599627370496}`},
		{"int-too-small", `{"i":-4503599627370497}`},
		{"int-overflow", `{"i":99999999999999999999999}`},
		{"float-overflow", `{"f":1e400}`},
		{"string-in-array-too-long", `{"a":["` + strings.Repeat("x", 4097) + `"]}`},
		{"huge-body", `{"s":"` + strings.Repeat("x", 70000) + `"}`},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			_, err := ParseTwinPatch([]byte(tc.body))
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
			var te *TwinError
			if !errors.As(err, &te) || StatusOf(err) != 400 {
				t.Errorf("err %T, status %d", err, StatusOf(err))
			}
		})
	}
}

func TestParseTwin(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // {"desired":…,"reported":…} as Twin.AppendJSON writes it
	}{
		{"current", `{"desired":{"a":1,"$version":3,"$metadata":{"$lastUpdated":"x"}},"reported":{"b":"x","$version":7}}`,
			`{"desired":{"a":1,"$version":3},"reported":{"b":"x","$version":7}}`},
		{"live-empty", `{"desired":{"$version":1},"reported":{"$version":1}}`,
			`{"desired":{"$version":1},"reported":{"$version":1}}`},
		{"legacy-wrapper", `{"properties":{"desired":{"a":{"b":2},"$version":2},"reported":{"$version":4}}}`,
			`{"desired":{"a":{"b":2},"$version":2},"reported":{"$version":4}}`},
		{"missing-reported", `{"desired":{"$version":5}}`,
			`{"desired":{"$version":5},"reported":{"$version":0}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw, err := ParseTwin([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tw.AppendJSON(nil)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"desired":1}`, `nope`} {
		if _, err := ParseTwin([]byte(bad)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseTwin(%s) err = %v", bad, err)
		}
	}
}

func TestParseDesiredPatch(t *testing.T) {
	p, v, ok, err := ParseDesiredPatch([]byte(`{"fw":"1.2","old":null,"$version":8}`))
	if err != nil || !ok || v != 8 {
		t.Fatalf("v=%d ok=%v err=%v", v, ok, err)
	}
	if diff := cmp.Diff(map[string]any{"fw": "1.2", "old": nil}, p); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
	if got := string(AppendPatchJSON(nil, p, 8)); got != `{"fw":"1.2","old":null,"$version":8}` {
		t.Errorf("AppendPatchJSON = %s", got)
	}
	if got := string(AppendPatchJSON(nil, nil, 2)); got != `{"$version":2}` {
		t.Errorf("empty AppendPatchJSON = %s", got)
	}
}

func TestValidateTwinKey(t *testing.T) {
	if err := ValidateTwinKey("ok_key-1"); err != nil {
		t.Error(err)
	}
	if err := ValidateTwinKey("\xff"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestTwinJSONNoHTMLEscape(t *testing.T) {
	tw := Twin{Desired: TwinSection{Version: 2, Props: map[string]any{"s": "<a&b>"}}}
	if got := string(tw.AppendJSON(nil)); got != `{"desired":{"s":"<a&b>","$version":2},"reported":{"$version":0}}` {
		t.Errorf("got %s", got)
	}
}

// TestTwinDepthDocsExample: the device-twins guide gives, as the deepest
// valid object, a section whose members nest ten objects ("one" … "ten")
// with a primitive inside the tenth; one more level is over the limit.
// Arrays count as a level like objects.
func TestTwinDepthDocsExample(t *testing.T) {
	names := []string{"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"}
	nest := func(n int) string { // a patch whose members nest n objects
		var b strings.Builder
		b.WriteString("{")
		for _, name := range names[:n] {
			b.WriteString(`"` + name + `":{`)
		}
		b.WriteString(`"property":"value"`)
		b.WriteString(strings.Repeat("}", n+1))
		return b.String()
	}
	arrays := func(n int) string { // n nested arrays below the section
		return `{"a":` + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + "}"
	}
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"docs-example-10-objects", nest(10), true},
		{"11-objects", nest(11), false},
		{"10-arrays", arrays(10), true},
		{"11-arrays", arrays(11), false},
		{"objects-and-arrays-10", `{"a":[{"b":[{"c":[{"d":[{"e":[{"f":1}]}]}]}]}]}`, true},
		{"objects-and-arrays-11", `{"a":[{"b":[{"c":[{"d":[{"e":[{"f":[1]}]}]}]}]}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTwinPatch([]byte(tc.body))
			if tc.ok && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadRequest) {
				t.Errorf("err = %v, want ErrBadRequest", err)
			}
			// The hub answers the same way.
			h := NewHubTwin()
			r := parse(t, AppendTwinPatchReportedTopic(nil, "1"))
			reply, _ := h.HandleRequest(&r, []byte(tc.body))
			want := "$iothub/twin/res/204/?$rid=1&$version=2"
			if !tc.ok {
				want = "$iothub/twin/res/400/?$rid=1"
			}
			if string(reply.Topic) != want {
				t.Errorf("hub reply %q, want %q", reply.Topic, want)
			}
		})
	}
}
