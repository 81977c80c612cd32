package iothub

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPropertiesParse(t *testing.T) {
	tests := []struct {
		name string
		bag  string
		want Properties
	}{
		{"empty", "", Properties{}},
		{"contract-telemetry", "%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp",
			Properties{MessageID: "42", ContentType: "application/json", ContentEncoding: "utf-8",
				App: []Property{{Key: "alert", Value: "high temp"}}}},
		{"contract-c2d", "%24.mid=2c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
			Properties{MessageID: "2c2d", To: "/devices/dev1/messages/devicebound", ContentEncoding: "utf-8", Ack: "none"}},
		{"dollar-spelling", "$.mid=1&$.cid=2", Properties{MessageID: "1", CorrelationID: "2"}},
		{"odd-dollar-spelling", "%24%2Emid=1&%24%2ecid=2", Properties{MessageID: "1", CorrelationID: "2"}},
		{"all-system", "$.mid=a&$.cid=b&$.uid=c&$.ct=d&$.ce=e&$.ctime=f&$.exp=g&$.to=h&$.schema=i&$.sub=j&$.ifid=k&$.on=l&$.diagid=m&$.diagctx=n&iothub-ack=full",
			Properties{MessageID: "a", CorrelationID: "b", UserID: "c", ContentType: "d", ContentEncoding: "e",
				CreationTime: "f", Expiry: "g", To: "h", Schema: "i", Subject: "j", InterfaceID: "k",
				OutputName: "l", DiagID: "m", DiagContext: "n", Ack: "full"}},
		{"null-vs-empty", "a&b=&c=1", Properties{App: []Property{{Key: "a", Null: true}, {Key: "b"}, {Key: "c", Value: "1"}}}},
		{"plus-stays-plus", "k=a+b&x+y=1", Properties{App: []Property{{Key: "k", Value: "a+b"}, {Key: "x+y", Value: "1"}}}},
		{"leading-question-mark", "?k=v", Properties{App: []Property{{Key: "k", Value: "v"}}}},
		{"empty-segments", "&&k=v&&", Properties{App: []Property{{Key: "k", Value: "v"}}}},
		{"equals-in-value", "k=a=b==", Properties{App: []Property{{Key: "k", Value: "a=b=="}}}},
		{"bad-escape-literal", "k=100%&p=%zz%4", Properties{App: []Property{{Key: "k", Value: "100%"}, {Key: "p", Value: "%zz%4"}}}},
		{"lowercase-hex", "k=%2f%3a", Properties{App: []Property{{Key: "k", Value: "/:"}}}},
		{"utf8", "k=%C3%A9t%C3%A9", Properties{App: []Property{{Key: "k", Value: "été"}}}},
		{"unknown-dollar-key-is-app", "%24.foo=1", Properties{App: []Property{{Key: "$.foo", Value: "1"}}}},
		{"system-case-sensitive", "%24.MID=1", Properties{App: []Property{{Key: "$.MID", Value: "1"}}}},
		{"duplicate-system-last-wins", "$.mid=1&$.mid=2", Properties{MessageID: "2"}},
		{"app-order-kept", "z=1&a=2&m=3", Properties{App: []Property{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "m", Value: "3"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProperties([]byte(tc.bag))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			// decode → encode → decode is exact.
			again, err := ParseProperties(got.AppendBag(nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, again, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip via %q (-first +second):\n%s", got.AppendBag(nil), diff)
			}
		})
	}
}

func TestPropertiesRoundTripAwkward(t *testing.T) {
	awkward := []string{
		"", " ", "a b", "a+b", "a&b", "a=b", "100%", "%20", "?", "#", "/", "\\", ":", ";", "\"", "'",
		"\x00", "\x7f", "\xff", "é", "日本", "a\nb", "~-._", "$.mid", "iothub-ack", "!*()",
	}
	for _, k := range awkward {
		for _, v := range awkward {
			if k == "" || k == "$.mid" || k == "iothub-ack" {
				continue // empty keys are invalid; system keys read back as named fields
			}
			var p Properties
			p.MessageID = v
			p.Add(k, v)
			p.App = append(p.App, Property{Key: k, Null: true})
			bag := p.AppendBag(nil)
			got, err := ParseProperties(bag)
			if err != nil {
				t.Fatalf("k=%q v=%q: %v", k, v, err)
			}
			if diff := cmp.Diff(p, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("k=%q v=%q bag %q (-want +got):\n%s", k, v, bag, diff)
			}
		}
	}
}

func TestAppendEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"high temp", "high%20temp"},
		{"a+b", "a%2Bb"},
		{"application/json", "application%2Fjson"},
		{"$.mid", "%24.mid"},
		{"dtmi:com:example:Thermostat;1", "dtmi%3Acom%3Aexample%3AThermostat%3B1"},
		{"AZaz09-._~", "AZaz09-._~"},
		{"é", "%C3%A9"},
	}
	for _, tc := range tests {
		if got := string(AppendEscape(nil, tc.in)); got != tc.want {
			t.Errorf("AppendEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := Unescape([]byte(tc.want)); got != tc.in {
			t.Errorf("Unescape(%q) = %q, want %q", tc.want, got, tc.in)
		}
	}
}

func TestClassifyKey(t *testing.T) {
	tests := []struct {
		key  string
		want SysProp
	}{
		{"$.mid", SysMessageID}, {"%24.mid", SysMessageID}, {"%24%2Emid", SysMessageID},
		{"$.ctime", SysCreationTime}, {"$.ct", SysContentType}, {"$.diagctx", SysDiagContext},
		{"iothub-ack", SysAck}, {"iothub%2Dack", SysAck}, {"$.nope", SysNone}, {"mid", SysNone},
		{"$.", SysNone}, {"$", SysNone}, {"%24", SysNone}, {"%2", SysNone}, {"", SysNone},
	}
	for _, tc := range tests {
		if got := ClassifyKey([]byte(tc.key)); got != tc.want {
			t.Errorf("ClassifyKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
	if SysMessageID.Key() != "$.mid" || SysAck.String() != "iothub-ack" || SysNone.String() != "SysNone" {
		t.Error("SysProp names")
	}
}

func TestBagIter(t *testing.T) {
	it := ScanBag([]byte("?a=1&b&&c=&=x&d=4"))
	var got []Pair
	for p, ok := it.Next(); ok; p, ok = it.Next() {
		got = append(got, p)
	}
	want := []Pair{
		{Key: []byte("a"), Value: []byte("1"), HasValue: true},
		{Key: []byte("b")},
		{Key: []byte("c"), Value: []byte{}, HasValue: true},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pairs (-want +got):\n%s", diff)
	}
	if !errors.Is(it.Err(), ErrMalformedBag) {
		t.Errorf("Err = %v, want ErrMalformedBag", it.Err())
	}
	if _, err := ParseProperties([]byte("a=1&=2")); !errors.Is(err, ErrMalformedBag) {
		t.Errorf("ParseProperties error = %v", err)
	}
}

func TestLookupBag(t *testing.T) {
	bag := []byte("%24rid=7&%24version=3&flag")
	if v, ok := LookupBag(bag, "$rid"); !ok || string(v) != "7" {
		t.Errorf("$rid = %q %v", v, ok)
	}
	if v, ok := LookupBag(bag, "flag"); !ok || v != nil {
		t.Errorf("flag = %q %v", v, ok)
	}
	if _, ok := LookupBag(bag, "nope"); ok {
		t.Error("found absent key")
	}
}

func TestPropertiesAccessors(t *testing.T) {
	var p Properties
	p.Set(SysContentType, "application/json")
	p.Set(SysNone, "ignored")
	p.Add("a", "1")
	if p.Get(SysContentType) != "application/json" || p.Get(SysNone) != "" {
		t.Error("Get/Set")
	}
	if v, ok := p.Lookup("a"); !ok || v != "1" {
		t.Error("Lookup")
	}
	if _, ok := p.Lookup("b"); ok {
		t.Error("Lookup absent")
	}
	if n := p.CountedSize(); n != len("application/json")+2 {
		t.Errorf("CountedSize = %d", n)
	}
	p.Reset()
	if p.ContentType != "" || len(p.App) != 0 || cap(p.App) == 0 {
		t.Error("Reset")
	}
}

func TestAppendPairSeparator(t *testing.T) {
	b := AppendPair(nil, "a", "1")
	b = AppendNullPair(b, "n")
	b = AppendPair(b, []byte("c"), []byte("x y"))
	if string(b) != "a=1&n&c=x%20y" {
		t.Errorf("got %q", b)
	}
	if got := string(AppendPair([]byte("x/?"), "k", "v")); got != "x/?k=v" {
		t.Errorf("got %q", got)
	}
}
