package mqtt

import (
	"context"
	"net"
	"strings"

	"github.com/hubwire/hubwire/transport"
)

// urlDialer returns a dialer for rawURL with transport's schemes (tcp, mqtt,
// tls, ssl, mqtts, ws, wss); a bare host:port means TCP.
func urlDialer(rawURL string, cfg transport.Config) (func(ctx context.Context) (net.Conn, error), error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "tcp://" + rawURL
	}
	d, err := transport.NewDialer(rawURL, cfg)
	if err != nil {
		return nil, invalid("URL", err)
	}
	return d.DialContext, nil
}
