package sas_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// nodeIdentity is one request to interop/node/sas/gen-tokens.js.
type nodeIdentity struct {
	Host     string `json:"host"`
	DeviceID string `json:"deviceId"`
	ModuleID string `json:"moduleId,omitempty"`
	Key      string `json:"key"`
	KeyName  string `json:"keyName,omitempty"`
}

// idSpecials is what IoT Hub allows in device and module ids besides
// letters and digits (iothub.ValidID; sas does not import iothub).
const idSpecials = "-:.+%_#*?!(),=@;$'"

const idAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomID returns a valid id of 1–128 characters. A quarter are letters
// and digits only; the rest draw a special character one time in three, so
// most hold several, '%' followed by hex digits included.
func randomID(r *rand.Rand) string {
	n := 1 + r.IntN(24)
	if r.IntN(8) == 0 {
		n = 1 + r.IntN(128)
	}
	plain := r.IntN(4) == 0
	b := make([]byte, n)
	for i := range b {
		switch {
		case !plain && r.IntN(3) == 0:
			b[i] = idSpecials[r.IntN(len(idSpecials))]
		default:
			b[i] = idAlnum[r.IntN(len(idAlnum))]
		}
	}
	return string(b)
}

// requireNode returns the path of node and of the npm project in
// interop/node, or skips the test; under CI=true it fails instead, since CI
// installs both and a skip there would hide the check.
func requireNode(t *testing.T) (node, script string) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		fail("node is not installed (%v); scripts/test installs it", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "interop", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "azure-iot-device", "package.json")); err != nil {
		fail("the Node SDK is not installed: run npm ci in %s (%v)", dir, err)
	}
	return node, filepath.Join(dir, "sas", "gen-tokens.js")
}

// nodeTokens runs gen-tokens.js on ids and returns its tokens, in order.
func nodeTokens(t *testing.T, node, script string, ids []nodeIdentity) []string {
	t.Helper()
	in, err := json.Marshal(ids)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Stdin = bytes.NewReader(in)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.Bytes())
	}
	var tokens []string
	if err := json.Unmarshal(stdout.Bytes(), &tokens); err != nil {
		t.Fatalf("gen-tokens output: %v\n%s", err, stdout.Bytes())
	}
	if len(tokens) != len(ids) {
		t.Fatalf("gen-tokens returned %d tokens for %d identities", len(tokens), len(ids))
	}
	return tokens
}

// TestNodeSDKTokenScopes is a differential test against the official Node
// device SDK (npm azure-iot-device, pinned in interop/node): for 400 random
// valid identities, 200 devices and 200 modules, the SDK's own
// SharedAccessKeyAuthenticationProvider signs a token, and each must verify
// for its identity and for no neighbouring one. The Node SDK escapes the
// resource URI once with the ids raw inside, unlike the C# SDK and edgeHub,
// which escape the ids first.
func TestNodeSDKTokenScopes(t *testing.T) {
	node, script := requireNode(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x6875627769726521))

	const host = "hubwire-test.azure-devices.net"
	keys := make([][]byte, 400)
	ids := make([]nodeIdentity, 400)
	for i := range ids {
		keys[i] = make([]byte, 32)
		for j := range keys[i] {
			keys[i][j] = byte(r.Uint32())
		}
		ids[i] = nodeIdentity{Host: host, DeviceID: randomID(r), Key: base64.StdEncoding.EncodeToString(keys[i])}
		if i%2 == 1 {
			ids[i].ModuleID = randomID(r)
		}
		if i%8 == 0 {
			ids[i].KeyName = "registryReadWrite" // a policy token scoped to the identity
		}
	}
	tokens := nodeTokens(t, node, script, ids)

	now := time.Now()
	var sigFail, scopeFail [2]int // [device, module]
	var broader int
	for i, text := range tokens {
		id := ids[i]
		kind := 0
		if id.ModuleID != "" {
			kind = 1
		}
		tok, err := sas.ParseToken(text)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", text, err)
		}
		if tok.KeyName != id.KeyName {
			t.Errorf("token %d: skn %q, want %q", i, tok.KeyName, id.KeyName)
		}
		if err := tok.Verify(keys[i], now); err != nil {
			sigFail[kind]++
			t.Errorf("device %q module %q: Verify: %v", id.DeviceID, id.ModuleID, err)
			continue
		}
		self := sas.Identity{Host: host, DeviceID: id.DeviceID, ModuleID: id.ModuleID}
		errFor := tok.VerifyFor(self.Resource(), keys[i], now)
		errID := tok.VerifyIdentity(self, keys[i], now)
		if errFor != nil || errID != nil {
			scopeFail[kind]++
			if scopeFail[0]+scopeFail[1] <= 5 {
				t.Errorf("device %q module %q: VerifyFor: %v, VerifyIdentity: %v (sr %s)",
					id.DeviceID, id.ModuleID, errFor, errID, tok.EncodedResource)
			}
		}
		for _, other := range neighbours(self) {
			errFor := tok.VerifyFor(other.Resource(), keys[i], now)
			errID := tok.VerifyIdentity(other, keys[i], now)
			if !errors.Is(errFor, sas.ErrResourceMismatch) || !errors.Is(errID, sas.ErrResourceMismatch) {
				broader++
				t.Errorf("token for %+v covers %+v: VerifyFor: %v, VerifyIdentity: %v", self, other, errFor, errID)
			}
		}
	}
	t.Logf("%d Node SDK tokens: signature failures %d devices, %d modules; scope failures %d devices, %d modules; %d cover a neighbour",
		len(tokens), sigFail[0], sigFail[1], scopeFail[0], scopeFail[1], broader)
	if scopeFail[0]+scopeFail[1] > 0 {
		t.Errorf("%d device and %d module tokens verified but failed the scope check", scopeFail[0], scopeFail[1])
	}
}

// neighbours returns identities a token for id must not cover: ids one
// character longer or shorter ("dev" must not cover "dev#1", "dev/x" or
// "de"), and for a module its device and a sibling. None can be the same
// id under either reading of a scope (raw, or escaped and decoded), since
// decoding never lengthens an id and shortens it by an even count.
func neighbours(id sas.Identity) []sas.Identity {
	grow := func(s string) []string {
		out := []string{s + "x", s + "#1", s + "/x", s + "%23"}
		if len(s) > 1 {
			out = append(out, s[:len(s)-1])
		}
		return out
	}
	var out []sas.Identity
	if id.ModuleID == "" {
		for _, d := range grow(id.DeviceID) {
			out = append(out, sas.Identity{Host: id.Host, DeviceID: d})
		}
		return out
	}
	for _, m := range grow(id.ModuleID) {
		out = append(out, sas.Identity{Host: id.Host, DeviceID: id.DeviceID, ModuleID: m})
	}
	for _, d := range grow(id.DeviceID) {
		out = append(out, sas.Identity{Host: id.Host, DeviceID: d, ModuleID: id.ModuleID})
	}
	return append(out, sas.Identity{Host: id.Host, DeviceID: id.DeviceID}, sas.Identity{Host: "other.azure-devices.net", DeviceID: id.DeviceID, ModuleID: id.ModuleID})
}
