package packet

// Type is an MQTT control packet type, the high nibble of the first byte of
// every packet [MQTT-2.2.1].
type Type byte

// The 14 MQTT 3.1.1 control packet types. 0 and 15 are reserved.
const (
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
)

var typeNames = [16]string{
	"RESERVED(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "RESERVED(15)",
}

// String returns the spec's name for t, such as "PUBLISH".
func (t Type) String() string {
	if t > 15 {
		return "INVALID"
	}
	return typeNames[t]
}

// Valid reports whether t is one of the 14 defined packet types.
func (t Type) Valid() bool { return t >= TypeConnect && t <= TypeDisconnect }

// QoS is an MQTT quality-of-service level.
type QoS byte

// The three delivery levels [MQTT-4.3].
const (
	QoS0 QoS = 0 // at most once
	QoS1 QoS = 1 // at least once
	QoS2 QoS = 2 // exactly once
)

// Valid reports whether q is 0, 1 or 2.
func (q QoS) Valid() bool { return q <= QoS2 }

// ID is a packet identifier. Zero is not a valid identifier on the wire
// [MQTT-2.3.1-1].
type ID uint16
