package mqtt

import (
	"context"
	"net"
	"net/url"
	"strings"
)

// urlDialer returns a dialer for rawURL: a bare host:port or tcp://host:port.
func urlDialer(rawURL string) (func(ctx context.Context) (net.Conn, error), error) {
	addr := rawURL
	if strings.Contains(rawURL, "://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, invalid("URL", err)
		}
		switch u.Scheme {
		case "tcp", "mqtt":
			addr = u.Host
		default:
			return nil, errNoTransport
		}
	}
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}, nil
}
