package emulator

import "errors"

// Errors returned by the Hub's Go API. Each names one IoT Hub error class, so
// the REST layer can map it to a status and an error code with errors.Is:
//
//	ErrDeviceNotFound       404 DeviceNotFound (404001)
//	ErrModuleNotFound       404 ModuleNotFound (404010)
//	ErrDeviceAlreadyExists  409 DeviceAlreadyExists (409001)
//	ErrModuleAlreadyExists  409 ModuleAlreadyExistsOnDevice (409301)
//	ErrPreconditionFailed   412 PreconditionFailed (412001)
//	ErrInvalidArgument      400 ArgumentInvalid (400004)
//	ErrQueueFull            403 DeviceMaximumQueueDepthExceeded (403004)
//	ErrMessageTooLarge      413 MessageTooLarge (413001)
//	ErrDeviceNotOnline      404 DeviceNotOnline (404103)
//	ErrTimeout              504 GatewayTimeout (504101)
//	ErrUnauthorized         401 IotHubUnauthorizedAccess (401002)
//	ErrPolicyNotFound       404 (no such shared access policy)
//	ErrClosed               the Hub was closed
var (
	ErrDeviceNotFound      = errors.New("emulator: device not found")
	ErrModuleNotFound      = errors.New("emulator: module not found")
	ErrDeviceAlreadyExists = errors.New("emulator: device already exists")
	ErrModuleAlreadyExists = errors.New("emulator: module already exists on device")
	ErrPreconditionFailed  = errors.New("emulator: precondition failed (etag mismatch)")
	ErrInvalidArgument     = errors.New("emulator: invalid argument")
	ErrQueueFull           = errors.New("emulator: device maximum queue depth exceeded")
	ErrMessageTooLarge     = errors.New("emulator: message too large")
	ErrDeviceNotOnline     = errors.New("emulator: device not online")
	ErrTimeout             = errors.New("emulator: timed out waiting for the device")
	ErrUnauthorized        = errors.New("emulator: unauthorized")
	ErrPolicyNotFound      = errors.New("emulator: shared access policy not found")
	ErrClosed              = errors.New("emulator: hub closed")
)

// argError is an ErrInvalidArgument with the reason.
type argError struct{ msg string }

func (e *argError) Error() string        { return "emulator: invalid argument: " + e.msg }
func (e *argError) Is(target error) bool { return target == ErrInvalidArgument }

func invalid(msg string) error { return &argError{msg: msg} }
