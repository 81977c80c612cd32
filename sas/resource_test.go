package sas

import (
	"errors"
	"net/url"
	"testing"
)

// TestEscapeIDCharacters pins the escaping of every character IoT Hub allows
// in ids besides letters and digits, after .NET's WebUtility.UrlEncode: the
// id is escaped once in the resource URI and the URI again in sr.
func TestEscapeIDCharacters(t *testing.T) {
	cases := []struct{ id, once, twice string }{
		{"-", "-", "-"},
		{":", "%3A", "%253A"},
		{".", ".", "."},
		{"+", "%2B", "%252B"},
		{"%", "%25", "%2525"},
		{"_", "_", "_"},
		{"#", "%23", "%2523"},
		{"*", "*", "*"},
		{"?", "%3F", "%253F"},
		{"!", "!", "!"},
		{"(", "(", "("},
		{")", ")", ")"},
		{",", "%2C", "%252C"},
		{"=", "%3D", "%253D"},
		{"@", "%40", "%2540"},
		{";", "%3B", "%253B"},
		{"$", "%24", "%2524"},
		{"'", "%27", "%2527"},
		{" ", "%20", "%2520"}, // not allowed in ids; %20, not '+'
		{"~", "%7E", "%257E"}, // WebUtility escapes '~'
		{"/", "%2F", "%252F"},
		{"é", "%C3%A9", "%25C3%25A9"},
		{"aZ09", "aZ09", "aZ09"},
	}
	for _, c := range cases {
		if got := Escape(c.id); got != c.once {
			t.Errorf("Escape(%q) = %q, want %q", c.id, got, c.once)
		}
		res := DeviceResource("h", "d"+c.id)
		if res != "h/devices/d"+c.once {
			t.Errorf("DeviceResource(h, d%s) = %q", c.id, res)
		}
		if sr := Escape(res); sr != "h%2Fdevices%2Fd"+c.twice {
			t.Errorf("sr for id d%s = %q, want %q", c.id, sr, "h%2Fdevices%2Fd"+c.twice)
		}
		back, err := Unescape(c.once)
		if err != nil || back != c.id {
			t.Errorf("Unescape(%q) = %q, %v; want %q", c.once, back, err, c.id)
		}
	}
}

func TestModuleResource(t *testing.T) {
	got := ModuleResource("myhub.azure-devices.net", "d#1", "m;2")
	want := "myhub.azure-devices.net/devices/d%231/modules/m%3B2"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"":        "",
		"abc":     "abc",
		"a+b":     "a+b", // '+' is not a space
		"%2f%2F":  "//",
		"%25231":  "%231",
		"%41%62c": "Abc",
	} {
		got, err := Unescape(in)
		if err != nil || got != want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"%", "%2", "a%g0", "%0g", "%%41"} {
		if got, err := Unescape(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Unescape(%q) = %q, %v; want ErrMalformed", bad, got, err)
		}
	}
}

// TestUnescapeMatchesPathUnescape checks our decoder against net/url's on
// inputs without '+' (where the two agree by design).
func TestUnescapeMatchesPathUnescape(t *testing.T) {
	for _, s := range []string{"a%2Fb", "%25%32%35", "x%C3%A9y", "%7e~"} {
		want, err := url.PathUnescape(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Unescape(s); err != nil || got != want {
			t.Errorf("Unescape(%q) = %q, %v; url.PathUnescape gives %q", s, got, err, want)
		}
	}
}

func TestResourceCovers(t *testing.T) {
	const h = "myhub.azure-devices.net"
	cases := []struct {
		scope, res string
		want       bool
	}{
		{h, h + "/devices/d", true},
		{h + "/devices", h + "/devices/d", true},
		{h + "/devices/d", h + "/devices/d", true},
		{h + "/devices/d", h + "/devices/d/modules/m", true},
		{h + "/devices/d/", h + "/devices/d", true},
		{"MyHub.Azure-Devices.Net", h + "/devices/d", true},
		{h + "/devices/dev%28", h + "/devices/dev(", true}, // Go/Python escape '(', C# does not
		{h + "/devices/dev%2a", h + "/devices/dev*", true},
		{h + "/devices/D", h + "/devices/d", false},
		{h + "/devices/d", h + "/devices/dx", false},
		{h + "/devices/dx", h + "/devices/d", false},
		{h + "/devices/d/modules/m", h + "/devices/d", false},
		{h + "/devices/d%2Fmodules%2Fm", h + "/devices/d/modules/m", false}, // an encoded '/' is not a separator
		{h + "/devices/%zz", h + "/devices/%zz", false},                     // broken escapes match nothing
		// The Node SDK's form: ids raw inside the scope.
		{h + "/devices/dev#1", h + "/devices/dev%231", true},
		{h + "/devices/a%b", h + "/devices/a%25b", true},
		{h + "/devices/a%41", h + "/devices/a%2541", true},
		{h + "/devices/a%41", h + "/devices/aA", true}, // or "aA" escaped: both readings
		{h + "/devices/d%1/modules/m%", h + "/devices/d%251/modules/m%25", true},
		{h + "/devices/dev", h + "/devices/dev%231", false},
		{h + "/devices/dev#1", h + "/devices/dev", false},
		{h + "/devices/dev#1", h + "/devices/dev%23", false},
		{h + "/devices/a%b", h + "/devices/a%b", false}, // the resource's broken escape
		{h + "/devices/a%2541", h + "/devices/a%41", false},
		{"", h, false},
		{"/", h, false},
		{h, "", false},
		{"other.azure-devices.net", h + "/devices/d", false},
		{h + ".evil", h + "/devices/d", false},
	}
	for _, c := range cases {
		if got := ResourceCovers(c.scope, c.res); got != c.want {
			t.Errorf("ResourceCovers(%q, %q) = %v, want %v", c.scope, c.res, got, c.want)
		}
	}
}
