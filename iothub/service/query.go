package service

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"strconv"
)

// DefaultPageSize is the page size Query asks for when given 0: IoT Hub's
// default of 100 items.
const DefaultPageSize = 100

// MaxPageSize is the largest page IoT Hub serves.
const MaxPageSize = 1000

// Page is one page of a query's results.
type Page struct {
	// Items are the page's results: twins for SELECT *, one object such as
	// {"n": 3} for SELECT COUNT() AS n.
	Items []json.RawMessage
	// ItemType is the x-ms-item-type header, e.g. "Twin" or "Raw".
	ItemType string
	// Continuation is the token of the next page; "" on the last page.
	Continuation string
}

type queryBody struct {
	Query string `json:"query"`
}

// QueryPage runs query (POST /devices/query) and returns one page of at
// most pageSize results (0: DefaultPageSize; at most MaxPageSize), starting
// at continuation ("" for the first page). An unsupported or malformed
// query gives ErrBadRequest.
func (c *Client) QueryPage(ctx context.Context, query string, pageSize int, continuation string) (*Page, error) {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	if pageSize > MaxPageSize {
		pageSize = MaxPageSize
	}
	h := http.Header{}
	h.Set("x-ms-max-item-count", strconv.Itoa(pageSize))
	if continuation != "" {
		h.Set("x-ms-continuation", continuation)
	}
	var items []json.RawMessage
	hdr, err := c.do(ctx, &request{op: "Query", method: http.MethodPost, path: "/devices/query", body: queryBody{query}, header: h}, &items)
	if err != nil {
		return nil, err
	}
	return &Page{Items: items, ItemType: hdr.Get("x-ms-item-type"), Continuation: hdr.Get("x-ms-continuation")}, nil
}

// Query runs query and yields every result, fetching pages of pageSize (0:
// DefaultPageSize) as the loop goes on. An error ends the sequence, yielded
// with a nil item. Stopping the loop early fetches no more pages.
//
//	for raw, err := range c.Query(ctx, "SELECT COUNT() AS n FROM devices", 0) { … }
func (c *Client) Query(ctx context.Context, query string, pageSize int) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		cont := ""
		for {
			p, err := c.QueryPage(ctx, query, pageSize, cont)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.Continuation == "" || p.Continuation == cont {
				return
			}
			cont = p.Continuation
		}
	}
}

// QueryTwins runs a SELECT * query and yields each result decoded as a
// twin. An error (from the hub, or a result that is not a twin) ends the
// sequence, yielded with a nil twin.
func (c *Client) QueryTwins(ctx context.Context, query string, pageSize int) iter.Seq2[*Twin, error] {
	return func(yield func(*Twin, error) bool) {
		for raw, err := range c.Query(ctx, query, pageSize) {
			if err != nil {
				yield(nil, err)
				return
			}
			t := new(Twin)
			if err := json.Unmarshal(raw, t); err != nil {
				yield(nil, &Error{Op: "Query", StatusCode: http.StatusOK, Message: "a result is not a twin: " + err.Error()})
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}
