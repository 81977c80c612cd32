package emulator

import (
	"net/http"
	"strings"
)

// maxBulkDevices is IoT Hub's limit on one bulk registry operation.
const maxBulkDevices = 100

// bulkItem is one entry of POST /devices: a device with its id in "id"
// (Node's addDevices/updateDevices/removeDevices replace deviceId with it)
// and what to do with it.
type bulkItem struct {
	deviceBody
	ID         *string `json:"id"`
	ImportMode string  `json:"importMode"`
}

type bulkError struct {
	DeviceID    string `json:"deviceId"`
	ErrorCode   string `json:"errorCode"`
	ErrorStatus string `json:"errorStatus"`
}

type bulkReply struct {
	IsSuccessful bool        `json:"isSuccessful"`
	Errors       []bulkError `json:"errors"`
	Warnings     []bulkError `json:"warnings"`
}

// bulkDevices serves the bulk registry operation: up to 100 creates,
// updates or deletes, each applied on its own (not as a transaction), with
// the failures listed in the reply.
func (s *restServer) bulkDevices(w http.ResponseWriter, r *http.Request) error {
	var items []bulkItem
	if err := decodeJSON(r, maxRESTBody, &items); err != nil {
		return err
	}
	if len(items) == 0 || len(items) > maxBulkDevices {
		return badRequest("a bulk operation takes 1 to %d devices, not %d", maxBulkDevices, len(items))
	}
	reply := bulkReply{Errors: []bulkError{}, Warnings: []bulkError{}}
	for _, it := range items {
		id := str(it.ID)
		if id == "" {
			id = str(it.DeviceID)
		}
		if err := s.bulkOne(r, id, &it); err != nil {
			re := toRESTError(err)
			reply.Errors = append(reply.Errors, bulkError{DeviceID: id, ErrorCode: re.code, ErrorStatus: re.msg})
		}
	}
	reply.IsSuccessful = len(reply.Errors) == 0
	return writeJSON(w, http.StatusOK, reply, "")
}

func (s *restServer) bulkOne(r *http.Request, id string, it *bulkItem) error {
	if err := validID(id); err != nil {
		return err
	}
	d := Device{DeviceID: id, StatusReason: str(it.StatusReason), DeviceScope: str(it.DeviceScope), ParentScopes: it.ParentScopes,
		Authentication: it.Authentication.toAuth()}
	if it.Status != nil {
		d.Status = *it.Status
	}
	if it.Capabilities != nil && it.Capabilities.IotEdge != nil {
		d.Capabilities.IotEdge = *it.Capabilities.IotEdge
	}
	etag := str(it.ETag)
	ctx := r.Context()
	var err error
	switch strings.ToLower(it.ImportMode) {
	case "create":
		_, err = s.h.CreateDevice(ctx, d)
	case "createorupdate":
		if _, err = s.h.CreateDevice(ctx, d); isExists(err) {
			_, err = s.h.UpdateDevice(ctx, d, "*")
		}
	case "update":
		_, err = s.h.UpdateDevice(ctx, d, "*")
	case "updateifmatchetag":
		if etag == "" {
			return badRequest("importMode UpdateIfMatchETag needs an eTag")
		}
		_, err = s.h.UpdateDevice(ctx, d, etag)
	case "delete":
		err = s.h.DeleteDevice(ctx, id, "*")
	case "deleteifmatchetag":
		if etag == "" {
			return badRequest("importMode DeleteIfMatchETag needs an eTag")
		}
		err = s.h.DeleteDevice(ctx, id, etag)
	default:
		return badRequest("importMode %q is not one of create, createOrUpdate, update, updateIfMatchETag, delete, deleteIfMatchETag", it.ImportMode)
	}
	return err
}
