package iothub

import (
	"strings"
	"testing"
)

// TestHubBagsNeverHaveBareKeys: the hub's C2D and module-input topics write
// a null application property as "k=", since SDKs mis-read a bare key.
func TestHubBagsNeverHaveBareKeys(t *testing.T) {
	p := &Properties{MessageID: "m1", App: []Property{{Key: "n", Null: true}, {Key: "k", Value: "v"}}}
	for name, topic := range map[string]string{
		"c2d":   string(AppendC2DTopic(nil, "dev1", p)),
		"input": string(AppendModuleInputTopic(nil, "dev1", "mod1", "in1", p)),
	} {
		bag := topic[strings.LastIndexByte(topic, '/')+1:]
		for _, pair := range strings.Split(bag, "&") {
			if !strings.Contains(pair, "=") {
				t.Errorf("%s: bare key %q in %s", name, pair, topic)
			}
		}
		if !strings.Contains(bag, "&n=&") {
			t.Errorf("%s: null property not written as n=: %s", name, topic)
		}
	}
	// The device side keeps the null form.
	if got := string(p.AppendBag(nil)); !strings.Contains(got, "&n&") {
		t.Errorf("AppendBag = %s, want the bare null key kept", got)
	}
}

// TestMethodNamesSDKsMisread: Invoke refuses the method names the Node SDK
// alters or breaks with ErrBadRequest.
func TestMethodNamesSDKsMisread(t *testing.T) {
	tab := NewMethodTable(nil)
	for _, c := range "? '^\\`|\"<>{}/+#\x00" {
		name := "a" + string(c) + "b"
		_, _, err := tab.Invoke(MethodCall{DeviceID: "d", Name: name}, true)
		if StatusOf(err) != 400 {
			t.Errorf("Invoke(%q) = %v, want 400", name, err)
		}
	}
	for _, name := range []string{"reboot", "get-status", "a.b_c:d", "fw$update", "ünïcode"} {
		_, w, err := tab.Invoke(MethodCall{DeviceID: "d", Name: name}, true)
		if err != nil {
			t.Errorf("Invoke(%q) = %v", name, err)
			continue
		}
		w.Cancel(ErrTimeout)
	}
}
