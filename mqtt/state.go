package mqtt

// State is the connection state of a Client.
type State int32

// The states of a Client. A new client is StateDisconnected; Connect moves
// it through StateConnecting to StateConnected; a lost connection moves it to
// StateReconnecting (or StateDisconnected when Config.Reconnect.Disabled);
// Close ends in StateClosed.
const (
	StateDisconnected State = iota
	StateConnecting
	StateConnected
	StateReconnecting
	StateClosed
)

var stateNames = [...]string{"disconnected", "connecting", "connected", "reconnecting", "closed"}

// String returns the state's lower-case name.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}
