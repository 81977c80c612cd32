package service

import (
	"errors"
	"net/http"
	"testing"
)

// TestParseError reads the error replies of contract §8 as IoT Hub sends
// them (envelope A, envelope B, a header alone, a bare code) and checks the
// errors.Is classes.
func TestParseError(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  string
		body    string
		code    string
		number  int
		msg     string
		tid     string
		classes []error
		not     []error
	}{
		{"A device not found", 404, "DeviceNotFound",
			`{"Message":"ErrorCode:DeviceNotFound;Device d1 not found","ExceptionMessage":"Tracking ID:0123456789abcdef0123456789abcdef-G:0-TimeStamp:12/02/2026 17:00:00"}`,
			"DeviceNotFound", 404001, "Device d1 not found", "0123456789abcdef0123456789abcdef", []error{ErrDeviceNotFound, ErrNotFound}, []error{ErrModuleNotFound, ErrDeviceNotOnline}},
		{"A without header", 409, "",
			`{"Message":"ErrorCode:DeviceAlreadyExists;A device with ID 'x' is already registered.","ExceptionMessage":""}`,
			"DeviceAlreadyExists", 409001, "A device with ID 'x' is already registered.", "", []error{ErrDeviceAlreadyExists, ErrAlreadyExists}, []error{ErrModuleAlreadyExists}},
		{"A precondition", 412, "PreconditionFailed", `{"Message":"ErrorCode:PreconditionFailed;Precondition failed: Device version did not match","ExceptionMessage":""}`,
			"PreconditionFailed", 412001, "Precondition failed: Device version did not match", "", []error{ErrPreconditionFailed}, nil},
		{"A unauthorized", 401, "IotHubUnauthorizedAccess", `{"Message":"ErrorCode:IotHubUnauthorizedAccess;Unauthorized","ExceptionMessage":""}`,
			"IotHubUnauthorizedAccess", 401002, "Unauthorized", "", []error{ErrUnauthorized}, nil},
		{"B not online", 404, "DeviceNotOnline",
			`{"Message":"{\"errorCode\":404103,\"trackingId\":\"abc\",\"message\":\"Timed out waiting for device to connect.\",\"info\":{\"timeout\":\"00:00:00\"},\"timestampUtc\":\"2026-12-02T17:00:00.0000000Z\"}","ExceptionMessage":""}`,
			"DeviceNotOnline", 404103, "Timed out waiting for device to connect.", "abc", []error{ErrDeviceNotOnline, ErrNotFound}, []error{ErrDeviceNotFound}},
		{"B timeout without header", 504, "",
			`{"Message":"{\"errorCode\":504101,\"trackingId\":\"t\",\"message\":\"Timed out waiting for the response from device.\",\"info\":{},\"timestampUtc\":\"x\"}","ExceptionMessage":""}`,
			"GatewayTimeout", 504101, "Timed out waiting for the response from device.", "t", []error{ErrTimeout}, nil},
		{"B bare", 404, "", `{"errorCode":404103,"message":"offline"}`, "DeviceNotOnline", 404103, "offline", "", []error{ErrDeviceNotOnline}, nil},
		{"throttled by status", 429, "", ``, "", 0, "", "", []error{ErrThrottled}, nil},
		{"throttled by name", 429, "ThrottlingException", `{"Message":"ErrorCode:ThrottlingException;slow down","ExceptionMessage":""}`, "ThrottlingException", 429001, "slow down", "", []error{ErrThrottled}, nil},
		{"queue full", 403, "DeviceMaximumQueueDepthExceeded", `{"Message":"ErrorCode:DeviceMaximumQueueDepthExceeded;full","ExceptionMessage":""}`, "DeviceMaximumQueueDepthExceeded", 403004, "full", "", []error{ErrQueueFull}, []error{ErrUnauthorized}},
		{"too large", 413, "MessageTooLarge", `{"Message":"ErrorCode:MessageTooLarge;big","ExceptionMessage":""}`, "MessageTooLarge", 413001, "big", "", []error{ErrMessageTooLarge}, nil},
		{"numeric header", 404, "404001", ``, "404001", 404001, "", "", []error{ErrDeviceNotFound}, nil},
		{"plain text", 400, "", `Bad Request`, "", 0, "Bad Request", "", []error{ErrBadRequest}, nil},
		{"server", 500, "ServerError", `{"Message":"ErrorCode:ServerError;oops","ExceptionMessage":""}`, "ServerError", 0, "oops", "", []error{ErrServer}, nil},
		{"unknown 404", 404, "", `{}`, "", 0, "", "", []error{ErrNotFound}, []error{ErrDeviceNotFound}},
		{"unknown 418", 418, "", ``, "", 0, "", "", nil, []error{ErrBadRequest, ErrServer, ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.header != "" {
				resp.Header.Set("iothub-errorcode", tt.header)
			}
			e := parseError("Op", resp, []byte(tt.body))
			if e.Code != tt.code || e.Message != tt.msg || e.TrackingID != tt.tid || e.StatusCode != tt.status {
				t.Errorf("parsed %+v", e)
			}
			if e.Number != tt.number {
				t.Errorf("number %d, want %d", e.Number, tt.number)
			}
			var err error = e
			for _, c := range tt.classes {
				if !errors.Is(err, c) {
					t.Errorf("%v is not %v", err, c)
				}
			}
			for _, c := range tt.not {
				if errors.Is(err, c) {
					t.Errorf("%v is %v", err, c)
				}
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Op: "GetDevice", StatusCode: 404, Code: "DeviceNotFound", Number: 404001, Message: "no d1"}
	if got, want := e.Error(), "service: GetDevice: 404 DeviceNotFound (404001): no d1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	for _, cs := range []string{
		"",
		"HostName=h",
		"HostName=h;DeviceId=d;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"HostName=h;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"HostName=h;SharedAccessKeyName=p;SharedAccessKey=%%%",
	} {
		if _, err := New(cs, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%q) = %v, want ErrConfig", cs, err)
		}
	}
	good := "HostName=h;SharedAccessKeyName=p;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	for _, o := range []*Options{{Endpoint: "ftp://h"}, {Endpoint: "https://h/path"}, {Endpoint: "https://"}, {TokenTTL: -1}} {
		if _, err := New(good, o); !errors.Is(err, ErrConfig) {
			t.Errorf("New with %+v = %v, want ErrConfig", o, err)
		}
	}
	c, err := New(good, nil)
	if err != nil || c.HostName() != "h" || c.endpoint != "https://h" {
		t.Fatalf("New = %+v, %v", c, err)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"dev1": "dev1", "a b": "a%20b", "a/b": "a%2Fb", "x#y?z": "x%23y%3Fz", "p+q%": "p%2Bq%25", "-_.~": "-_.~", "é": "%C3%A9",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	if quoteETag("*") != "*" || quoteETag(`"x"`) != `"x"` || quoteETag("MA==") != `"MA=="` {
		t.Error("quoteETag")
	}
}
