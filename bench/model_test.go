package bench

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// MQTT control packet types, as on the wire (high nibble of byte 0).
const (
	tConnect     byte = 1
	tConnack     byte = 2
	tPublish     byte = 3
	tPuback      byte = 4
	tPubrec      byte = 5
	tPubrel      byte = 6
	tPubcomp     byte = 7
	tSubscribe   byte = 8
	tSuback      byte = 9
	tUnsubscribe byte = 10
	tUnsuback    byte = 11
	tPingreq     byte = 12
	tPingresp    byte = 13
	tDisconnect  byte = 14
)

// pkt is the codec-neutral form of one MQTT 3.1.1 packet. Every adapter maps
// its codec's own structs to and from it, so that packets decoded by
// different codecs can be compared field by field with go-cmp. Only the
// fields that belong to Type are meaningful; the others stay zero.
type pkt struct {
	Type byte

	// PUBLISH
	Dup     bool
	QoS     byte
	Retain  bool
	Topic   string
	Payload []byte

	// packet identifier: PUBLISH (QoS > 0), the four acks, SUBSCRIBE,
	// SUBACK, UNSUBSCRIBE, UNSUBACK
	ID uint16

	// CONNECT
	ProtocolName  string
	ProtocolLevel byte
	CleanSession  bool
	KeepAlive     uint16
	ClientID      string
	WillFlag      bool
	WillQoS       byte
	WillRetain    bool
	WillTopic     string
	WillPayload   []byte
	UsernameFlag  bool
	Username      string
	PasswordFlag  bool
	Password      []byte

	// CONNACK
	SessionPresent bool
	ReturnCode     byte

	// SUBSCRIBE (Filter, QoS) and UNSUBSCRIBE (Filter only)
	Subs []sub

	// SUBACK
	ReturnCodes []byte
}

// sub is one topic filter of a SUBSCRIBE (with its requested QoS) or an
// UNSUBSCRIBE (QoS unused).
type sub struct {
	Filter string
	QoS    byte
}

// codec is one implementation under comparison. Benchmark loops live in the
// codec's own functions so that no indirect call sits inside the timed loop.
// A nil function means the codec does not take part in that comparison.
type codec struct {
	name string
	note string // one line for the README and the compare table

	// wire returns p encoded the way this codec puts it on the wire. It
	// gives b.SetBytes its value and the decode benchmarks their input.
	wire func(p *pkt) ([]byte, error)

	// encode, decode and stream run the timed loop of a benchmark for p
	// (stream: n back-to-back copies of p). They set up outside the loop.
	encode func(b *testing.B, p *pkt)
	decode func(b *testing.B, p *pkt)
	stream func(b *testing.B, p *pkt, n int)

	// marshal and unmarshal take part in the differential and invalid-input
	// tests: unmarshal decodes exactly one packet from frame the way the
	// codec's users decode (stream reader plus the checks they run), and
	// fails if the codec leaves bytes of frame unread.
	marshal   func(p *pkt) ([]byte, error)
	unmarshal func(frame []byte) (*pkt, error)
}

// cyclicReader is an endless io.Reader over a fixed byte string. It stands
// in for a net.Conn in the decode and stream benchmarks: every codec reads
// the same bytes through it, no syscalls are counted for anyone, and the
// readers that keep state (bufio, packet.Reader) live across iterations so
// steady-state allocation counts are what the benchmarks report.
type cyclicReader struct {
	b   []byte
	off int
}

func newCyclicReader(b []byte) *cyclicReader { return &cyclicReader{b: b} }

func (r *cyclicReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off += c
		if r.off == len(r.b) {
			r.off = 0
		}
	}
	return n, nil
}

// leftoverError reports a decoder that stopped before the end of the
// frame: on a connection the remaining bytes would be read as the start of
// the next packet.
type leftoverError struct{ n int }

func (e leftoverError) Error() string {
	return fmt.Sprintf("decoder left %d byte(s) of the frame unread", e.n)
}

// sink keeps benchmark results alive.
var sink any

// An IoT Hub telemetry topic with a property bag ($.ct and $.ce), as a
// device SDK sends it.
const benchTopic = "devices/dev-0001/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8"

// payloadOf returns n deterministic payload bytes that look like telemetry.
func payloadOf(n int) []byte {
	const pattern = `{"temperature":21.5,"humidity":48,"pressure":1013.2,"seq":1234567},`
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

// sasPassword is a 150-byte SharedAccessSignature like the one an IoT Hub
// device sends as its CONNECT password.
var sasPassword = func() []byte {
	s := "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-0001&sig=" +
		"Vv3nI3RYVqKkXz3L7u4eHfBu6X1s0d7E8x9r2cQvA5k%3D&se=1767225600"
	s += strings.Repeat("0", 150-len(s))
	return []byte(s)
}()

// The packets of the benchmark cases: telemetry PUBLISHes of 16 B to 4 KiB,
// a QoS 1 PUBLISH, and an IoT Hub device's CONNECT.
var (
	benchPublish16   = &pkt{Type: tPublish, Topic: benchTopic, Payload: payloadOf(16)}
	benchPublish256  = &pkt{Type: tPublish, Topic: benchTopic, Payload: payloadOf(256)}
	benchPublish4096 = &pkt{Type: tPublish, Topic: benchTopic, Payload: payloadOf(4096)}
	benchPublishQoS1 = &pkt{Type: tPublish, QoS: 1, ID: 0x1234, Topic: benchTopic, Payload: payloadOf(256)}
	benchConnect     = &pkt{
		Type: tConnect, ProtocolName: "MQTT", ProtocolLevel: 4,
		CleanSession: true, KeepAlive: 240, ClientID: "dev-0001",
		UsernameFlag: true, Username: "myhub.azure-devices.net/dev-0001/?api-version=2021-04-12",
		PasswordFlag: true, Password: sasPassword,
	}
	benchSubscribe = &pkt{Type: tSubscribe, ID: 7, Subs: []sub{
		{Filter: "devices/dev-0001/messages/devicebound/#", QoS: 1},
		{Filter: "$iothub/twin/res/#", QoS: 0},
		{Filter: "$iothub/methods/POST/#", QoS: 0},
	}}
	benchPuback = &pkt{Type: tPuback, ID: 0x1234}
)

// corpusCase is one valid packet of the differential corpus.
type corpusCase struct {
	name string // "<type>/<variant>"; the prefix before '/' is the type
	p    *pkt
}

// connectBase returns a CONNECT with the fields every variant shares.
func connectBase() pkt {
	return pkt{Type: tConnect, ProtocolName: "MQTT", ProtocolLevel: 4}
}

// corpus returns valid packets of all 14 types with varied flags, QoS,
// empty and non-empty payloads, will, username and password, several
// filters, a SUBACK failure code and remaining lengths of 1 to 4 bytes.
func corpus() []corpusCase {
	var cs []corpusCase
	add := func(name string, p pkt) { cs = append(cs, corpusCase{name, &p}) }

	c := connectBase()
	c.CleanSession, c.ClientID = true, "c"
	add("connect/minimal", c)

	c = connectBase()
	c.CleanSession = true
	add("connect/empty-client-id-clean", c)

	c = connectBase()
	c.KeepAlive, c.ClientID = 65535, "capteur-é-01"
	add("connect/persistent-utf8-client-id", c)

	c = *benchConnect
	add("connect/iothub-sas", c)

	c = connectBase()
	c.CleanSession, c.ClientID, c.UsernameFlag, c.Username = true, "u", true, "only-user"
	add("connect/username-only", c)

	c = connectBase()
	c.ClientID, c.UsernameFlag, c.Username, c.PasswordFlag = "u", true, "user", true
	add("connect/empty-password", c)

	c = connectBase()
	c.KeepAlive, c.ClientID = 30, "w1"
	c.WillFlag, c.WillQoS, c.WillRetain = true, 1, true
	c.WillTopic, c.WillPayload = "devices/w1/status", []byte("offline")
	add("connect/will-qos1-retain", c)

	c = connectBase()
	c.CleanSession, c.ClientID = true, "w2"
	c.WillFlag, c.WillQoS, c.WillTopic, c.WillPayload = true, 2, "status/w2", []byte{0, 1, 2, 0xff}
	c.UsernameFlag, c.Username, c.PasswordFlag, c.Password = true, "user", true, []byte("secret")
	add("connect/will-qos2-user-pass", c)

	c = connectBase()
	c.CleanSession, c.ClientID = true, "w3"
	c.WillFlag, c.WillTopic = true, "status/w3"
	add("connect/will-empty-message", c)

	add("connack/accepted", pkt{Type: tConnack})
	add("connack/session-present", pkt{Type: tConnack, SessionPresent: true})
	add("connack/bad-protocol-version", pkt{Type: tConnack, ReturnCode: 1})
	add("connack/not-authorized", pkt{Type: tConnack, ReturnCode: 5})

	add("publish/qos0-16B", *benchPublish16)
	add("publish/qos0-empty-payload", pkt{Type: tPublish, Topic: "a/b"})
	add("publish/qos0-retain", pkt{Type: tPublish, Retain: true, Topic: "r", Payload: []byte("x")})
	add("publish/qos1-256B", *benchPublishQoS1)
	add("publish/qos1-dup", pkt{Type: tPublish, Dup: true, QoS: 1, ID: 1, Topic: "d/1", Payload: []byte("again")})
	add("publish/qos2-dup-retain-id-max", pkt{Type: tPublish, Dup: true, QoS: 2, Retain: true, ID: 65535, Topic: "q2", Payload: []byte("two")})
	add("publish/qos1-empty-payload", pkt{Type: tPublish, QoS: 1, ID: 9, Topic: "e"})
	add("publish/qos0-4KiB", *benchPublish4096)
	add("publish/utf8-topic", pkt{Type: tPublish, Topic: "capteurs/température/°C/日本", Payload: []byte("1")})
	add("publish/dollar-topic", pkt{Type: tPublish, QoS: 1, ID: 2, Topic: "$iothub/twin/res/200/?$rid=1", Payload: []byte("{}")})
	add("publish/slash-only-topic", pkt{Type: tPublish, Topic: "/", Payload: []byte("s")})
	// Remaining-length boundaries: 127 (1 byte), 128 (2 bytes), 16384 (3
	// bytes), 2097152 (4 bytes). Topic "t" costs 3 bytes of the remaining
	// length at QoS 0.
	add("publish/remaining-length-127", pkt{Type: tPublish, Topic: "t", Payload: payloadOf(124)})
	add("publish/remaining-length-128", pkt{Type: tPublish, Topic: "t", Payload: payloadOf(125)})
	add("publish/remaining-length-16384", pkt{Type: tPublish, Topic: "t", Payload: payloadOf(16381)})
	add("publish/remaining-length-2097152", pkt{Type: tPublish, Topic: "t", Payload: payloadOf(2097149)})

	for _, t := range []struct {
		name string
		typ  byte
	}{{"puback", tPuback}, {"pubrec", tPubrec}, {"pubrel", tPubrel}, {"pubcomp", tPubcomp}, {"unsuback", tUnsuback}} {
		add(t.name+"/id-1", pkt{Type: t.typ, ID: 1})
		add(t.name+"/id-max", pkt{Type: t.typ, ID: 65535})
	}

	add("subscribe/one-filter", pkt{Type: tSubscribe, ID: 1, Subs: []sub{{Filter: "a/b"}}})
	add("subscribe/iothub-3-filters", *benchSubscribe)
	add("subscribe/wildcards-all-qos", pkt{Type: tSubscribe, ID: 65535, Subs: []sub{
		{Filter: "#", QoS: 0}, {Filter: "+", QoS: 1}, {Filter: "sport/+/player1", QoS: 2},
		{Filter: "sport/tennis/#", QoS: 1}, {Filter: "+/+/+", QoS: 0}, {Filter: "$SYS/#", QoS: 2},
	}})

	add("suback/granted", pkt{Type: tSuback, ID: 1, ReturnCodes: []byte{0}})
	add("suback/mixed-with-failure", pkt{Type: tSuback, ID: 7, ReturnCodes: []byte{0x00, 0x01, 0x02, 0x80}})

	add("unsubscribe/one-filter", pkt{Type: tUnsubscribe, ID: 3, Subs: []sub{{Filter: "a/b"}}})
	add("unsubscribe/three-filters", pkt{Type: tUnsubscribe, ID: 4, Subs: []sub{
		{Filter: "devices/dev-0001/messages/devicebound/#"}, {Filter: "$iothub/twin/res/#"}, {Filter: "+/x"},
	}})

	add("pingreq/empty", pkt{Type: tPingreq})
	add("pingresp/empty", pkt{Type: tPingresp})
	add("disconnect/empty", pkt{Type: tDisconnect})
	return cs
}

// readAllFrom decodes with read from a fresh reader over frame and checks
// that exactly the frame was consumed.
func readAllFrom(frame []byte, read func(r io.Reader) (*pkt, error)) (*pkt, error) {
	r := bytes.NewReader(frame)
	p, err := read(r)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, leftoverError{r.Len()}
	}
	return p, nil
}
