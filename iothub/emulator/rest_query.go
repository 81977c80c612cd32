package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/hubwire/hubwire/iothub/emulator/internal/query"
)

// Query paging: IoT Hub's default page is 100 items; the emulator serves
// pages of up to maxQueryPage.
const (
	defaultQueryPage = 100
	maxQueryPage     = 1000
)

func (s *restServer) routeQuery() {
	// The contract asks for ServiceConnect; RegistryRead is accepted too [?].
	s.handle("POST /devices/query", ServiceConnect|RegistryRead, s.query)
}

type queryRequest struct {
	Query *string `json:"query"`
}

// queryCursor is the continuation token: the key of the last twin of the
// previous page, base64url of "deviceId/moduleId" (ids cannot hold '/').
func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeCursor(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil || len(b) == 0 {
		return "", badRequest("x-ms-continuation is not a continuation token of this hub")
	}
	return string(b), nil
}

func (s *restServer) query(w http.ResponseWriter, r *http.Request) error {
	var req queryRequest
	if err := decodeJSON(r, maxRESTBody, &req); err != nil {
		return err
	}
	if req.Query == nil || strings.TrimSpace(*req.Query) == "" {
		return badRequest("the body must be {\"query\": \"SELECT … FROM devices …\"}")
	}
	q, err := query.Parse(*req.Query)
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			return badRequest("query: %s (at offset %d)", qe.Msg, qe.Pos)
		}
		return badRequest("query: %v", err)
	}
	pageSize := defaultQueryPage
	if v := r.Header.Get("x-ms-max-item-count"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return badRequest("x-ms-max-item-count must be a positive integer")
		}
		pageSize = min(n, maxQueryPage)
	}
	after := ""
	if v := r.Header.Get("x-ms-continuation"); strings.TrimSpace(v) != "" {
		if after, err = decodeCursor(v); err != nil {
			return err
		}
	}

	if q.Count {
		n := 0
		if err := s.eachTwin(q.From, "", func(_ string, doc any, _ []byte) bool {
			if q.Match(doc) {
				n++
			}
			return true
		}); err != nil {
			return err
		}
		w.Header().Set("x-ms-item-type", "Raw")
		return writeJSON(w, http.StatusOK, []map[string]int{{q.CountAlias: n}}, "")
	}

	items := make([]json.RawMessage, 0)
	last, more := "", false
	if err := s.eachTwin(q.From, after, func(key string, doc any, raw []byte) bool {
		if !q.Match(doc) {
			return true
		}
		if len(items) == pageSize {
			more = true
			return false
		}
		items = append(items, raw)
		last = key
		return true
	}); err != nil {
		return err
	}
	w.Header().Set("x-ms-item-type", "Twin")
	if more {
		w.Header().Set("x-ms-continuation", encodeCursor(last))
	}
	return writeJSON(w, http.StatusOK, items, "")
}

// eachTwin calls fn with every device (or module) twin after the key
// after, in key order ("deviceId" or "deviceId/moduleId"): the key, the twin
// decoded for the query evaluator and its JSON. It stops when fn returns
// false. Identities deleted meanwhile are skipped.
func (s *restServer) eachTwin(from query.Source, after string, fn func(key string, doc any, raw []byte) bool) error {
	for _, d := range s.h.ListDevices() {
		if from == query.Devices {
			if d.DeviceID <= after {
				continue
			}
			tw, err := s.h.GetTwin(d.DeviceID, "")
			if err != nil {
				continue
			}
			ok, err := visitTwin(d.DeviceID, tw, fn)
			if err != nil || !ok {
				return err
			}
			continue
		}
		if after != "" && d.DeviceID < strings.SplitN(after, "/", 2)[0] {
			continue
		}
		mods := s.h.ListModules(d.DeviceID) // ordered by module id
		for _, m := range mods {
			key := d.DeviceID + "/" + m.ModuleID
			if after != "" && !keyAfter(key, after) {
				continue
			}
			tw, err := s.h.GetTwin(d.DeviceID, m.ModuleID)
			if err != nil {
				continue
			}
			ok, err := visitTwin(key, tw, fn)
			if err != nil || !ok {
				return err
			}
		}
	}
	return nil
}

// keyAfter orders module keys by device id, then module id.
func keyAfter(key, after string) bool {
	kd, km, _ := strings.Cut(key, "/")
	ad, am, _ := strings.Cut(after, "/")
	if kd != ad {
		return kd > ad
	}
	return km > am
}

func visitTwin(key string, tw Twin, fn func(string, any, []byte) bool) (bool, error) {
	if tw.Tags == nil {
		tw.Tags = map[string]any{}
	}
	raw, err := json.Marshal(tw)
	if err != nil {
		return false, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return false, err
	}
	return fn(key, doc, raw), nil
}
