package service

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxC2DSize is the largest cloud-to-device message body IoT Hub accepts.
const MaxC2DSize = 64 << 10

// AckMode is the feedback a cloud-to-device message asks for (iothub-ack).
type AckMode string

// Acknowledgement modes.
const (
	AckNone     AckMode = "none"
	AckPositive AckMode = "positive"
	AckNegative AckMode = "negative"
	AckFull     AckMode = "full"
)

// C2DMessage is a cloud-to-device message to send through the emulator.
type C2DMessage struct {
	// Body is the payload, at most MaxC2DSize bytes.
	Body []byte
	// MessageID is the message id; empty lets the hub assign one.
	MessageID string
	// CorrelationID is the correlation id, if any.
	CorrelationID string
	// UserID is the user id system property, if any.
	UserID string
	// ContentType and ContentEncoding describe Body, if set.
	ContentType, ContentEncoding string
	// Ack is the feedback asked for; empty means none.
	Ack AckMode
	// TTL is how long the message may wait in the queue; 0 means the hub's
	// default (one hour in IoT Hub). ExpiryTime, if set, wins.
	TTL time.Duration
	// ExpiryTime is when the message expires, if not zero.
	ExpiryTime time.Time
	// Properties are the application properties.
	Properties map[string]string
}

// C2DHeaderPrefix starts the request header of each application property in
// the emulator's send endpoint ("iothub-app-<name>"), as in IoT Hub's device
// HTTP API.
const C2DHeaderPrefix = "iothub-app-"

// sendReply is the emulator's answer to a C2D send.
type sendReply struct {
	MessageID string `json:"messageId"`
}

// SendC2D queues a cloud-to-device message for device id through the
// emulator's POST /emulator/devices/{id}/messages/devicebound endpoint and
// returns the message id. IoT Hub itself sends C2D over AMQP only, so this
// call works against the emulator, not a real hub. An unknown device gives
// ErrDeviceNotFound, a full queue ErrQueueFull, a body over 64 KB
// ErrMessageTooLarge.
func (c *Client) SendC2D(ctx context.Context, id string, m *C2DMessage) (string, error) {
	h := http.Header{}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set("iothub-messageid", m.MessageID)
	set("iothub-correlationid", m.CorrelationID)
	set("iothub-userid", m.UserID)
	set("iothub-contenttype", m.ContentType)
	set("iothub-contentencoding", m.ContentEncoding)
	set("iothub-ack", string(m.Ack))
	if !m.ExpiryTime.IsZero() {
		h.Set("iothub-expiry", m.ExpiryTime.UTC().Format(time.RFC3339Nano))
	} else if m.TTL > 0 {
		h.Set("iothub-ttl", strconv.Itoa(seconds(m.TTL)))
	}
	for k, v := range m.Properties {
		h.Set(C2DHeaderPrefix+k, v)
	}
	body := m.Body
	if body == nil {
		body = []byte{}
	}
	var out sendReply
	_, err := c.do(ctx, &request{op: "SendC2D", method: http.MethodPost, path: "/emulator" + devicePath(id) + "/messages/devicebound",
		body: body, raw: true, header: h}, &out)
	if err != nil {
		return "", err
	}
	return out.MessageID, nil
}

// PurgeResult is the answer to PurgeC2D.
type PurgeResult struct {
	TotalMessagesPurged int    `json:"totalMessagesPurged"`
	DeviceID            string `json:"deviceId"`
	ModuleID            string `json:"moduleId,omitempty"`
}

// PurgeC2D drops every queued cloud-to-device message of device id
// (DELETE /devices/{id}/commands).
func (c *Client) PurgeC2D(ctx context.Context, id string) (*PurgeResult, error) {
	var out PurgeResult
	if _, err := c.do(ctx, &request{op: "PurgeC2D", method: http.MethodDelete, path: devicePath(id) + "/commands"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FeedbackRecord is the outcome of one cloud-to-device message that asked
// for feedback.
type FeedbackRecord struct {
	OriginalMessageID  string    `json:"originalMessageId"`
	EnqueuedTimeUTC    time.Time `json:"enqueuedTimeUtc"`
	StatusCode         string    `json:"statusCode"` // Success, Expired, DeliveryCountExceeded, Rejected, Purged
	Description        string    `json:"description"`
	DeviceID           string    `json:"deviceId"`
	DeviceGenerationID string    `json:"deviceGenerationId"`
}

// FeedbackBatch is one feedback message: its records and the lock token
// to complete or abandon it with.
type FeedbackBatch struct {
	Records   []FeedbackRecord
	LockToken string
}

// ReceiveFeedback takes the next feedback message (GET
// /messages/serviceBound/feedback), or returns nil, nil when there is none.
// Complete or abandon it with its LockToken.
func (c *Client) ReceiveFeedback(ctx context.Context) (*FeedbackBatch, error) {
	resp, err := c.send(ctx, &request{op: "ReceiveFeedback", method: http.MethodGet, path: "/messages/serviceBound/feedback"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	var recs []FeedbackRecord
	if err := decodeBounded(resp, &recs); err != nil {
		return nil, &Error{Op: "ReceiveFeedback", StatusCode: resp.StatusCode, Message: err.Error()}
	}
	return &FeedbackBatch{Records: recs, LockToken: strings.Trim(resp.Header.Get("ETag"), `"`)}, nil
}

// CompleteFeedback removes the feedback message locked by lockToken.
func (c *Client) CompleteFeedback(ctx context.Context, lockToken string) error {
	_, err := c.do(ctx, &request{op: "CompleteFeedback", method: http.MethodDelete, path: "/messages/serviceBound/feedback/" + escape(lockToken)}, nil)
	return err
}

// AbandonFeedback returns the feedback message locked by lockToken to the
// queue.
func (c *Client) AbandonFeedback(ctx context.Context, lockToken string) error {
	_, err := c.do(ctx, &request{op: "AbandonFeedback", method: http.MethodPost, path: "/messages/serviceBound/feedback/" + escape(lockToken) + "/abandon"}, nil)
	return err
}
