package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hubwire/hubwire/iothub"
)

// iothubTopicSeeds are topics of every form in the contract (§3–§7), both
// directions, plus lenient spellings and near misses.
var iothubTopicSeeds = []string{
	"devices/dev1/messages/events/",
	"devices/dev1/messages/events",
	"devices/dev1/messages/events/%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp",
	"devices/dev1/messages/events/a=1/",
	"devices/dev1/modules/mod-a/messages/events/k=v",
	"devices/dev1/messages/devicebound/%24.mid=2c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
	"devices/dev1/messages/devicebound/?k=v&n&e=",
	"devices/dev1/modules/m1/inputs/in1/%24.mid=7&k",
	"$iothub/twin/GET/?$rid=1",
	"$iothub/twin/PATCH/properties/reported/?$rid=9f2c-44",
	"$iothub/twin/PATCH/properties/desired/?$version=8",
	"$iothub/twin/res/200/?$rid=1",
	"$iothub/twin/res/204/?$rid=2&$version=17",
	"$iothub/twin/res/429/?%24rid=5",
	"$iothub/methods/POST/reboot/?$rid=42",
	"$iothub/methods/res/-1/?$rid=42",
	"devices/dev1/messages/devicebound/#",
	"$iothub/twin/res/#",
	"$iothub/twin/PATCH/properties/desired/#",
	"$iothub/methods/POST/#",
	"devices/d/modules/m/#",
	"devices/d/modules/m/inputs/#",
	"devices/+/messages/devicebound/#",
	"devices/d/modules/m/messages/devicebound/#",
	"devices/00%3A11/messages/devicebound/#",
	"devices/00%3A11/messages/events/%24.mid=1",
	"devices/d/modules/m/messages/events/k=v&%24.on=out1/",
	"$iothub/twin/PATCH/properties/reported/?$rid=12&$version=0",
	"$iothub/methods/res/2147483647/?$rid=9",
	"hub.azure-devices.net/dev1/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
	"hub/dev1/api-version=2016-11-14",
	"devices//messages/events/",
	"$iothub/twin/res/2x0/?$rid=1",
}

// routeFields is the part of a Route that must survive parse → build →
// parse (Query holds only $rid and $version after a rebuild).
type routeFields struct {
	Kind                                      iothub.RouteKind
	DeviceID, ModuleID, InputName, MethodName string
	Status                                    int
	RequestID                                 string
	Version                                   int64
	HasVersion                                bool
	Bag                                       string
}

func fieldsOf(r iothub.Route) routeFields {
	return routeFields{
		Kind: r.Kind, DeviceID: string(r.DeviceID), ModuleID: string(r.ModuleID),
		InputName: string(r.InputName), MethodName: string(r.MethodName), Status: r.Status,
		RequestID: string(r.RequestID), Version: r.Version, HasVersion: r.HasVersion, Bag: string(r.Bag),
	}
}

// FuzzParseTopic checks ParseTopic (and the filter and username parsers,
// which read the same kind of strings): no panic; every error is one of
// the package's sentinels; a parsed route rebuilds to a topic that parses
// to the same route, and rebuilding that gives the same bytes.
func FuzzParseTopic(f *testing.F) {
	for _, s := range iothubTopicSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, topic []byte) {
		r, err := iothub.ParseTopic(topic)
		if err != nil {
			if !errors.Is(err, iothub.ErrUnknownTopic) && !errors.Is(err, iothub.ErrMalformedTopic) {
				t.Fatalf("ParseTopic(%q): untyped error %v", topic, err)
			}
			if r.Kind != iothub.RouteUnknown {
				t.Fatalf("error with a route kind %v", r.Kind)
			}
		} else {
			if len(topic) > iothub.MaxTopicLen {
				t.Fatalf("accepted a %d-byte topic", len(topic))
			}
			built := r.AppendTopic(nil)
			r2, err := iothub.ParseTopic(built)
			if err != nil {
				t.Fatalf("ParseTopic(%q) ok, rebuilt %q fails: %v", topic, built, err)
			}
			if fieldsOf(r) != fieldsOf(r2) {
				t.Fatalf("%q → %q not stable (-first +second):\n%s", topic, built, cmp.Diff(fieldsOf(r), fieldsOf(r2)))
			}
			if again := r2.AppendTopic(nil); !bytes.Equal(again, built) {
				t.Fatalf("rebuild not canonical: %q then %q", built, again)
			}
			if len(r.Bag) > 0 {
				var p iothub.Properties
				if err := p.Parse(r.Bag); err != nil && !errors.Is(err, iothub.ErrMalformedBag) {
					t.Fatalf("bag %q: untyped error %v", r.Bag, err)
				}
			}
		}

		flt, err := iothub.ParseFilter(topic)
		if err != nil {
			if !errors.Is(err, iothub.ErrUnsupportedFilter) {
				t.Fatalf("ParseFilter(%q): untyped error %v", topic, err)
			}
		} else if got := rebuildFilter(flt); got != string(topic) {
			t.Fatalf("ParseFilter(%q) = %v %q %q, which rebuilds to %q", topic, flt.Kind, flt.DeviceID, flt.ModuleID, got)
		}

		u, err := iothub.ParseUsername(topic)
		if err != nil {
			if !errors.Is(err, iothub.ErrMalformedUsername) {
				t.Fatalf("ParseUsername(%q): untyped error %v", topic, err)
			}
		} else {
			u.Legacy = false
			u2, err := iothub.ParseUsername(u.Append(nil))
			if err != nil {
				t.Fatalf("ParseUsername(%q) ok, rebuilt %q fails: %v", topic, u.Append(nil), err)
			}
			if u.APIVersion == "" {
				u.APIVersion = iothub.DefaultAPIVersion // Append fills it in
			}
			if diff := cmp.Diff(u, u2); diff != "" {
				t.Fatalf("username %q not stable (-first +second):\n%s", topic, diff)
			}
		}
	})
}

func rebuildFilter(f iothub.Filter) string {
	switch f.Kind {
	case iothub.FilterC2D:
		if f.AnyDevice {
			return "devices/+/messages/devicebound/#"
		}
		return string(iothub.AppendC2DFilter(nil, string(f.DeviceID)))
	case iothub.FilterTwinResponses:
		return iothub.TwinResponseFilter
	case iothub.FilterTwinDesired:
		return iothub.TwinDesiredFilter
	case iothub.FilterMethods:
		return iothub.MethodsFilter
	case iothub.FilterModule:
		return string(iothub.AppendModuleFilter(nil, string(f.DeviceID), string(f.ModuleID)))
	case iothub.FilterModuleInputs:
		return "devices/" + string(f.DeviceID) + "/modules/" + string(f.ModuleID) + "/inputs/#"
	case iothub.FilterModuleC2D:
		return "devices/" + string(f.DeviceID) + "/modules/" + string(f.ModuleID) + "/messages/devicebound/#"
	}
	return ""
}

// FuzzPropertyBag checks the property-bag decoder: no panic; the only error
// is ErrMalformedBag; decode → encode → decode gives the same Properties and
// encoding is canonical; the iterator sees the same pairs; escaping is the
// inverse of unescaping.
func FuzzPropertyBag(f *testing.F) {
	for _, s := range []string{
		"",
		"%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp",
		"%24.mid=2c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
		"$.mid=1&$.cid=2&$.uid=3&$.ctime=2026-01-01T00%3A00%3A00Z&$.exp=x&$.schema=s&$.sub=c&$.ifid=i&$.on=o&$.diagid=d&$.diagctx=e",
		"?k=v", "a&b=&c=1", "k=a+b", "k=100%&p=%zz%4", "%24%2Emid=1", "=v", "&&", "k=%C3%A9", "k=a=b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, bag []byte) {
		p, err := iothub.ParseProperties(bag)
		if err != nil {
			if !errors.Is(err, iothub.ErrMalformedBag) {
				t.Fatalf("untyped error %v", err)
			}
		} else {
			enc := p.AppendBag(nil)
			p2, err := iothub.ParseProperties(enc)
			if err != nil {
				t.Fatalf("%q decoded, its encoding %q does not: %v", bag, enc, err)
			}
			if !sameProperties(&p, &p2) {
				t.Fatalf("%q → %q not stable (-first +second):\n%s", bag, enc, cmp.Diff(p, p2, cmpopts.EquateEmpty()))
			}
			if enc2 := p2.AppendBag(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("encoding not canonical: %q then %q", enc, enc2)
			}
			// The raw iterator agrees with the decoder.
			it := iothub.ScanBag(bag)
			apps := 0
			for pr, ok := it.Next(); ok; pr, ok = it.Next() {
				if iothub.ClassifyKey(pr.Key) == iothub.SysNone {
					if got, want := iothub.Unescape(pr.Key), p.App[apps].Key; got != want {
						t.Fatalf("pair %d key %q, decoder has %q", apps, got, want)
					}
					apps++
				}
			}
			if it.Err() != nil || apps != len(p.App) {
				t.Fatalf("iterator saw %d application pairs (err %v), decoder %d", apps, it.Err(), len(p.App))
			}
		}
		if got := iothub.Unescape(iothub.AppendEscape(nil, bag)); got != string(bag) {
			t.Fatalf("Unescape(AppendEscape(%q)) = %q", bag, got)
		}
		if got := string(iothub.AppendUnescape(nil, bag)); got != iothub.Unescape(bag) {
			t.Fatalf("AppendUnescape and Unescape differ on %q", bag)
		}
		_, _ = iothub.LookupBag(bag, "$.mid")

		// The device → hub decoder: same errors, stable round trip.
		var d, d2 iothub.Properties
		if err := d.ParseD2C(bag); err != nil {
			if !errors.Is(err, iothub.ErrMalformedBag) {
				t.Fatalf("ParseD2C: untyped error %v", err)
			}
		} else {
			enc := d.AppendBag(nil)
			if err := d2.ParseD2C(enc); err != nil || !sameProperties(&d, &d2) {
				t.Fatalf("ParseD2C %q → %q not stable (err %v):\n%s", bag, enc, err, cmp.Diff(d, d2, cmpopts.EquateEmpty()))
			}
		}
	})
}

// sameProperties is a fast equality for the fuzz loop (cmp reports the
// difference only when there is one).
func sameProperties(a, b *iothub.Properties) bool {
	for k := iothub.SysMessageID; k <= iothub.SysAck; k++ {
		if a.Get(k) != b.Get(k) {
			return false
		}
	}
	if len(a.App) != len(b.App) {
		return false
	}
	for i := range a.App {
		if a.App[i] != b.App[i] {
			return false
		}
	}
	return true
}
