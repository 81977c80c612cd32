package percent

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
)

// webUtility and unreserved are the two sets the callers use: sas (.NET's
// WebUtility.UrlEncode) and iothub (RFC 3986 unreserved).
var (
	webUtility = NewSet("-_.!*()")
	unreserved = NewSet("-._~")
)

func TestAppendEscape(t *testing.T) {
	cases := []struct {
		in   string
		keep *Set
		want string
	}{
		{"", webUtility, ""},
		{"aZ09-_.!*()", webUtility, "aZ09-_.!*()"},
		{"~ +/%#é", webUtility, "%7E%20%2B%2F%25%23%C3%A9"},
		{"aZ09-._~", unreserved, "aZ09-._~"},
		{"!*() +/%", unreserved, "%21%2A%28%29%20%2B%2F%25"},
		{"\x00\xff", unreserved, "%00%FF"},
	}
	for _, c := range cases {
		if got := string(AppendEscape(nil, c.in, c.keep)); got != c.want {
			t.Errorf("AppendEscape(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(AppendEscape([]byte("x"), []byte(c.in), c.keep)); got != "x"+c.want {
			t.Errorf("AppendEscape(x, []byte(%q)) = %q", c.in, got)
		}
		if n := EscapedLen(c.in, c.keep); n != len(c.want) {
			t.Errorf("EscapedLen(%q) = %d, want %d", c.in, n, len(c.want))
		}
	}
}

// TestUnreservedMatchesNetURL holds the unreserved set to net/url's
// PathEscape on every byte that PathEscape escapes too; PathEscape keeps
// more (sub-delims), so only its escaped bytes are compared.
func TestUnreservedMatchesNetURL(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		ours := string(AppendEscape(nil, s, unreserved))
		if theirs := url.PathEscape(s); theirs != s && ours != theirs {
			t.Errorf("byte %#x: %q, net/url %q", c, ours, theirs)
		}
		if want := strings.ContainsRune("-._~", rune(c)) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'; unreserved[c] != want {
			t.Errorf("byte %#x kept = %v", c, unreserved[c])
		}
	}
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in     string
		strict string // "" with ok false means broken
		ok     bool
		loose  string
	}{
		{"", "", true, ""},
		{"abc", "abc", true, "abc"},
		{"a+b", "a+b", true, "a+b"}, // '+' is not a space
		{"%2f%2F", "//", true, "//"},
		{"%25231", "%231", true, "%231"},
		{"%41%62c", "Abc", true, "Abc"},
		{"%", "", false, "%"},
		{"a%2", "", false, "a%2"},
		{"%g0x", "", false, "%g0x"},
		{"%0g", "", false, "%0g"},
		{"%%41", "", false, "%A"},
		{"100%", "", false, "100%"},
	} {
		got, ok := AppendUnescape(nil, c.in)
		if ok != c.ok || (ok && string(got) != c.strict) {
			t.Errorf("AppendUnescape(%q) = %q, %v; want %q, %v", c.in, got, ok, c.strict, c.ok)
		}
		if Valid(c.in) != c.ok {
			t.Errorf("Valid(%q) = %v", c.in, !c.ok)
		}
		var loose []byte
		for i := 0; i < len(c.in); {
			var b byte
			b, i = DecodeLenient([]byte(c.in), i)
			loose = append(loose, b)
		}
		if string(loose) != c.loose {
			t.Errorf("DecodeLenient over %q = %q, want %q", c.in, loose, c.loose)
		}
	}
}

// TestUnescapeMatchesNetURL checks the strict decoder against net/url's on
// inputs without '+' (where the two agree by design).
func TestUnescapeMatchesNetURL(t *testing.T) {
	for _, s := range []string{"a%2Fb", "%25%32%35", "x%C3%A9y", "%7e~", "%", "%zz", "ok"} {
		want, err := url.PathUnescape(s)
		got, ok := AppendUnescape(nil, s)
		if (err == nil) != ok || (ok && string(got) != want) {
			t.Errorf("AppendUnescape(%q) = %q, %v; url.PathUnescape gives %q, %v", s, got, ok, want, err)
		}
	}
}

// FuzzRoundTrip: whatever the set, decoding an encoding gives the input
// back, strictly and leniently, and the encoding is valid and as long as
// EscapedLen says.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "dev#1", "a b+c", "%zz", "\x00\xff~!*"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, web bool) {
		keep := unreserved
		if web {
			keep = webUtility
		}
		enc := AppendEscape(nil, s, keep)
		if len(enc) != EscapedLen(s, keep) || !Valid(enc) {
			t.Fatalf("%q → %q: length %d, EscapedLen %d, Valid %v", s, enc, len(enc), EscapedLen(s, keep), Valid(enc))
		}
		dec, ok := AppendUnescape(nil, enc)
		if !ok || string(dec) != s {
			t.Fatalf("%q → %q → %q, %v", s, enc, dec, ok)
		}
		var loose []byte
		for i := 0; i < len(enc); {
			var c byte
			c, i = DecodeLenient(enc, i)
			loose = append(loose, c)
		}
		if !bytes.Equal(loose, dec) {
			t.Fatalf("lenient %q, strict %q", loose, dec)
		}
		// Decoding arbitrary input never panics, and strict agrees with
		// lenient where it succeeds.
		if d, ok := AppendUnescape(nil, s); ok != Valid(s) {
			t.Fatalf("AppendUnescape(%q) ok %v, Valid %v (%q)", s, ok, Valid(s), d)
		}
	})
}
